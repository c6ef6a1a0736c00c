// Stand-ins for everything around one vsock Connection, so that a test can
// drive its state machine synchronously: a host stream that records what the
// connection asked of it and emits events when told, an owner (the muxer's
// part) that records calls, and a guest end that sends packets to the
// connection and takes its packets out through an rx buffer of a chosen size.
import type {
  Connection, ConnectionOwner, ConnectionTimeouts, PacketSink,
} from '../../../src/devices/virtio/vsock/connection.js';
import type { HostStream, HostStreamEvents } from '../../../src/devices/virtio/vsock/host-stream.js';
import {
  HEADER_SIZE, HOST_CID, Op, type PacketHeader, VSOCK_TYPE_STREAM, decodeHeader, opName,
} from '../../../src/devices/virtio/vsock/packet.js';
import type { PendingConnect } from '../../../src/devices/virtio/vsock/unix-backend.js';
import { GUEST_CID, type ReceivedPacket } from '../../helpers/vsock-guest.js';

export const HOST_PORT = 1_073_741_824;
export const GUEST_PORT = 1234;
/** Our receive buffer: small, so that credit updates come after a few hundred bytes. */
export const BUFFER_SIZE = 1000;
/** Different lengths, so that a test can tell which timer fired. */
export const TIMEOUTS: ConnectionTimeouts = { requestMs: 100, lingerMs: 300 };

/** More packets than any test expects from one receiveAll(). */
const MAX_PACKETS = 100;

export class FakeHostStream implements HostStream {
  /** Copies of what the connection wrote, in order (the pool may reuse the originals). */
  readonly written: Buffer[] = [];
  reading = true;
  corks = 0;
  ended = false;
  destroyed = false;
  destroyCalls = 0;
  bufferedBytes = 0;
  private events: HostStreamEvents | null = null;
  private readonly unfinishedWrites: ((error?: Error | null) => void)[] = [];

  /** Everything written, as text. */
  get text(): string {
    return Buffer.concat(this.written).toString();
  }

  listen(events: HostStreamEvents): void {
    this.events = events;
  }

  write(data: Uint8Array | string, done?: (error?: Error | null) => void): void {
    this.written.push(Buffer.from(data));
    if (done) this.unfinishedWrites.push(done);
  }

  end(): void {
    this.ended = true;
  }

  destroy(): void {
    this.destroyCalls += 1;
    this.destroyed = true;
  }

  pause(): void {
    this.reading = false;
  }

  resume(): void {
    this.reading = true;
  }

  cork(): void {
    this.corks += 1;
  }

  uncork(): void {
    this.corks -= 1;
  }

  /** The writes so far left the stream (or failed with `error`). */
  finishWrites(error?: Error): void {
    for (const done of this.unfinishedWrites.splice(0)) done(error);
  }

  // What the host program and the OS do.
  emitData(bytes: string | Buffer): void {
    this.listener().data(Buffer.from(bytes));
  }

  emitEnd(): void {
    this.listener().end();
  }

  emitError(): void {
    this.listener().error();
  }

  emitClose(): void {
    this.destroyed = true;
    this.listener().close();
  }

  private listener(): HostStreamEvents {
    if (this.events === null) throw new Error('the connection does not listen to this host stream');
    return this.events;
  }
}

export class RecordingOwner implements ConnectionOwner {
  rxWanted = 0;
  /** sendRst of each closed() call. */
  readonly closes: boolean[] = [];
  readonly corkedBy: Connection[] = [];

  wantsRx(): void {
    this.rxWanted += 1;
  }

  closed(_connection: Connection, sendRst: boolean): void {
    this.closes.push(sendRst);
  }

  corked(connection: Connection): void {
    this.corkedBy.push(connection);
  }
}

export class FakeConnectAttempt implements PendingConnect {
  cancelled = false;

  cancel(): void {
    this.cancelled = true;
  }
}

/** The guest's socket of one connection: its credit, the packets it sends, the packets it takes. */
export class FakeGuest {
  /** The guest's receive buffer and what it has consumed of it, sent in every packet. */
  bufAlloc = 64 * 1024;
  fwdCnt = 0;
  connection: Connection | null = null;

  header(op: number, options: { flags?: number; len?: number } = {}): PacketHeader {
    return {
      srcCid: GUEST_CID, dstCid: HOST_CID, srcPort: GUEST_PORT, dstPort: HOST_PORT,
      len: options.len ?? 0, type: VSOCK_TYPE_STREAM, op, flags: options.flags ?? 0,
      bufAlloc: this.bufAlloc, fwdCnt: this.fwdCnt,
    };
  }

  send(op: number, options: { flags?: number; payload?: string | Buffer } = {}): void {
    const payload = Buffer.from(options.payload ?? '');
    const header = this.header(op, { flags: options.flags, len: payload.length });
    this.target().onGuestPacket(header, { readableViews: (_offset, length) => [payload.subarray(0, length)] });
  }

  /** The connection's next packet for an rx buffer of `size` bytes, header included; null when it has none. */
  receive(size = 4096): ReceivedPacket | null {
    const buffer = new Uint8Array(size);
    const sink: PacketSink = {
      writableLength: size,
      write: (offset, source) => {
        buffer.set(source, offset);
        return source.byteLength;
      },
      writableViews: (offset, length) => [buffer.subarray(offset, offset + length)],
    };
    const length = this.target().fillRx(sink);
    if (length === 0) return null;
    return { header: decodeHeader(buffer), payload: Buffer.from(buffer.subarray(HEADER_SIZE, length)) };
  }

  /** The ops (and payloads, as text) of every packet the connection has, until it has none. */
  receiveAll(size = 4096): string[] {
    const packets: string[] = [];
    for (let packet = this.receive(size); packet !== null; packet = this.receive(size)) {
      packets.push(describe(packet));
      // A connection that never runs out of packets fails the test instead of hanging it.
      if (packets.length > MAX_PACKETS) throw new Error(`more than ${MAX_PACKETS} packets: ${packets.slice(0, 5).join(', ')}, ...`);
    }
    return packets;
  }

  private target(): Connection {
    if (this.connection === null) throw new Error('FakeGuest has no connection yet');
    return this.connection;
  }
}

/** A packet in a test's words: "RW hello", "SHUTDOWN 2", "CREDIT_UPDATE". */
function describe(packet: ReceivedPacket): string {
  const name = opName(packet.header.op);
  if (packet.header.op === Op.Shutdown) return `${name} ${packet.header.flags}`;
  if (packet.payload.length > 0) return `${name} ${packet.payload.toString()}`;
  return name;
}
