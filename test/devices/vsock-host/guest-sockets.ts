// The guest's vsock sockets for the VsockHost tests, played through the
// simulated driver (test/helpers/vsock-guest.ts) with the rules of Linux's
// net/vmw_vsock/virtio_transport_common.c: RESPONSE to a REQUEST on a
// listening port and RST on any other, sends within the peer's credit,
// CREDIT_UPDATE as the reader drains or when asked, and RST once both
// directions are shut. Streams can echo (a `socat VSOCK-LISTEN:p EXEC:cat`)
// or collect what they receive.
//
// It runs on interrupts, as a guest does: every used buffer the device
// returns raises one (the test driver's interrupt line is wrapped), and so
// does anything a test asks it to do.
import { Op, SHUTDOWN_BOTH, SHUTDOWN_SEND } from '../../../src/devices/virtio/vsock/packet.js';
import type { ReceivedPacket, VsockTestGuest } from '../../helpers/vsock-guest.js';

/** What the guest advertises as its receive buffer, as Linux's default. */
const GUEST_BUF_ALLOC = 256 * 1024;
/** Bytes per RW packet the guest sends (Linux: VIRTIO_VSOCK_MAX_PKT_BUF_SIZE is 64 KiB). */
const MAX_PACKET_PAYLOAD = 64 * 1024;
/** Consumed bytes after which the guest tells the host, unasked (Linux: when free space drops under 64 KiB). */
const CREDIT_UPDATE_THRESHOLD = GUEST_BUF_ALLOC - 64 * 1024;

/** How the guest treats a host connect to one of its ports. */
export interface GuestPortBehavior {
  /** 'echo': accept and send everything back; 'ignore': never answer the REQUEST (tsvmm gives up after 2 s). */
  readonly mode: 'echo' | 'ignore';
  /** Sent right after the RESPONSE, in the same batch (so it may share a read with the OK line). */
  readonly greeting?: Buffer;
  /** Called for each REQUEST to the port. */
  readonly onRequest?: () => void;
}

export class GuestSocket {
  state: 'connecting' | 'established' | 'closed';
  /** What the host sent, for sockets that do not echo. */
  readonly received: Buffer[] = [];
  /** Resolves once the connection is over (RST either way). */
  readonly closed: Promise<void>;
  /** Resolves once the host will send no more: its SHUTDOWN SEND (end of file), or the end of the connection. */
  readonly ended: Promise<void>;
  private markClosed!: () => void;
  private markEnded!: () => void;
  private connected!: { resolve: () => void; reject: (error: Error) => void };
  /** Bytes to send; `echoed` ones came from the host and count as consumed once sent back. */
  private readonly outgoing: { data: Buffer; echoed: boolean }[] = [];
  private endRequested = false;
  private shutdownSent = false;
  private peerShutdown = 0;
  private sent = 0;
  private consumed = 0;
  private announced = 0;
  private peerBufAlloc = 0;
  private peerFwdCnt = 0;

  constructor(
    private readonly owner: GuestSockets,
    readonly guestPort: number,
    readonly hostPort: number,
    readonly echo: boolean,
    state: 'connecting' | 'established',
  ) {
    this.state = state;
    this.closed = new Promise((resolve) => { this.markClosed = resolve; });
    this.ended = new Promise((resolve) => { this.markEnded = resolve; });
  }

  /** Resolves when the host accepted (RESPONSE), rejects on RST. For guest-initiated sockets. */
  whenConnected(): Promise<void> {
    return new Promise((resolve, reject) => { this.connected = { resolve, reject }; });
  }

  get data(): Buffer {
    return Buffer.concat(this.received);
  }

  write(data: Buffer): void {
    this.outgoing.push({ data, echoed: false });
    this.owner.wake();
  }

  /** SHUTDOWN SEND once everything written has gone out. */
  end(): void {
    this.endRequested = true;
    this.owner.wake();
  }

  handle({ header, payload }: ReceivedPacket): void {
    this.peerBufAlloc = header.bufAlloc;
    this.peerFwdCnt = header.fwdCnt;
    switch (header.op) {
      case Op.Response:
        if (this.state === 'connecting') {
          this.state = 'established';
          this.connected.resolve();
        }
        return;
      case Op.Rst:
        this.close();
        return;
      case Op.Rw:
        if (this.echo) {
          this.outgoing.push({ data: payload, echoed: true }); // consumed once sent back
        } else {
          this.received.push(payload);
          this.consume(payload.length);
        }
        return;
      case Op.CreditRequest:
        this.sendCreditUpdate();
        return;
      case Op.Shutdown:
        this.peerShutdown |= header.flags;
        if ((header.flags & SHUTDOWN_SEND) !== 0) this.markEnded();
        if (this.echo && (header.flags & SHUTDOWN_SEND) !== 0) this.endRequested = true;
        return;
      default:
        return; // CREDIT_UPDATE: the credit was taken above.
    }
  }

  /** Sends what credit allows, then the SHUTDOWN or the final RST that is due. */
  flush(): void {
    if (this.state !== 'established') return;
    while (this.outgoing.length > 0) {
      const credit = this.peerBufAlloc - ((this.sent - this.peerFwdCnt) >>> 0);
      if (credit <= 0) break;
      const first = this.outgoing[0]!;
      const n = Math.min(first.data.length, credit, MAX_PACKET_PAYLOAD);
      this.send(Op.Rw, 0, first.data.subarray(0, n));
      this.sent = (this.sent + n) >>> 0;
      if (n === first.data.length) this.outgoing.shift();
      else this.outgoing[0] = { data: first.data.subarray(n), echoed: first.echoed };
      if (first.echoed) this.consume(n);
    }
    if (this.endRequested && !this.shutdownSent && this.outgoing.length === 0) {
      this.shutdownSent = true;
      // An echo closes its socket when done (SHUTDOWN both, as close() sends); a writer shuts its sending side.
      this.send(Op.Shutdown, this.echo ? SHUTDOWN_BOTH : SHUTDOWN_SEND);
    }
    if (this.peerShutdown === SHUTDOWN_BOTH && this.outgoing.length === 0) {
      // The peer is done both ways and we have read everything: Linux resets.
      this.send(Op.Rst);
      this.close();
    }
  }

  private consume(bytes: number): void {
    this.consumed = (this.consumed + bytes) >>> 0;
    if (((this.consumed - this.announced) >>> 0) >= CREDIT_UPDATE_THRESHOLD) this.sendCreditUpdate();
  }

  private sendCreditUpdate(): void {
    this.send(Op.CreditUpdate);
  }

  /** Sends one packet of this connection; every packet carries our credit, so the host is up to date after it. */
  send(op: number, flags = 0, payload?: Buffer): void {
    this.announced = this.consumed;
    this.owner.guest.send({
      op, flags, srcPort: this.guestPort, dstPort: this.hostPort, bufAlloc: GUEST_BUF_ALLOC, fwdCnt: this.consumed,
    }, payload);
  }

  private close(): void {
    if (this.state === 'connecting') this.connected.reject(new Error(`guest connect to host port ${this.hostPort} was reset`));
    this.state = 'closed';
    this.owner.forget(this);
    this.markEnded();
    this.markClosed();
  }
}

export class GuestSockets {
  private readonly behaviors = new Map<number, GuestPortBehavior>();
  private readonly sockets = new Map<string, GuestSocket>();
  private nextLocalPort = 40_000;
  private woken = false;
  private wakeUp: (() => void) | null = null;
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(readonly guest: VsockTestGuest) {
    const line = guest.driver.interrupts;
    const trigger = line.trigger.bind(line);
    line.trigger = () => {
      trigger();
      this.wake();
    };
    this.loop = this.run();
  }

  /** Makes guest port `port` answer host connects as `behavior` says (unlisted ports answer RST). */
  listen(port: number, behavior: GuestPortBehavior): void {
    this.behaviors.set(port, behavior);
  }

  /** The guest connects to host port `hostPort` (CID 2); resolves once the host accepted. */
  async connect(hostPort: number): Promise<GuestSocket> {
    const socket = new GuestSocket(this, this.nextLocalPort++, hostPort, false, 'connecting');
    this.sockets.set(keyOf(socket.guestPort, hostPort), socket);
    const connected = socket.whenConnected();
    socket.send(Op.Request);
    await connected;
    return socket;
  }

  /** Live guest sockets. */
  get count(): number {
    return this.sockets.size;
  }

  wake(): void {
    this.woken = true;
    const wakeUp = this.wakeUp;
    this.wakeUp = null;
    wakeUp?.();
  }

  forget(socket: GuestSocket): void {
    this.sockets.delete(keyOf(socket.guestPort, socket.hostPort));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      this.woken = false;
      this.step();
      if (!this.woken && !this.stopped) await new Promise<void>((resolve) => { this.wakeUp = resolve; });
    }
  }

  private step(): void {
    this.guest.pump();
    for (const packet of this.guest.inbox.splice(0)) this.dispatch(packet);
    for (const socket of [...this.sockets.values()]) socket.flush();
  }

  private dispatch(packet: ReceivedPacket): void {
    const { header } = packet;
    const socket = this.sockets.get(keyOf(header.dstPort, header.srcPort));
    if (socket !== undefined) {
      socket.handle(packet);
      return;
    }
    if (header.op === Op.Rst) return;
    const behavior = this.behaviors.get(header.dstPort);
    if (header.op !== Op.Request || behavior === undefined) {
      this.guest.send({ op: Op.Rst, srcPort: header.dstPort, dstPort: header.srcPort });
      return;
    }
    behavior.onRequest?.();
    if (behavior.mode === 'ignore') return;
    const accepted = new GuestSocket(this, header.dstPort, header.srcPort, true, 'established');
    this.sockets.set(keyOf(header.dstPort, header.srcPort), accepted);
    accepted.handle(packet); // takes the host's credit from the REQUEST
    accepted.send(Op.Response);
    if (behavior.greeting !== undefined) accepted.write(behavior.greeting);
  }
}

function keyOf(guestPort: number, hostPort: number): string {
  return `${guestPort}:${hostPort}`;
}
