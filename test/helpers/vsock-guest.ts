// A simulated guest vsock driver (the packet level of Linux's
// net/vmw_vsock/virtio_transport.c) on top of the simulated virtio-mmio
// driver, plus host-side Unix socket helpers. Used by the vsock device tests
// and reusable by benchmarks:
//
//   const { guest, device } = await VsockTestGuest.start({ dir });
//   guest.send({ op: Op.Request, srcPort: 1000, dstPort: 52 });
//   const reply = await guest.nextPacket((p) => p.header.dstPort === 1000);
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createVsockDevice, type VsockDevice, type VsockDeviceOptions } from '../../src/devices/virtio/vsock/device.js';
import {
  HEADER_SIZE, HOST_CID, Op, type PacketHeader, VSOCK_TYPE_STREAM, decodeHeader, encodeHeader,
} from '../../src/devices/virtio/vsock/packet.js';
import { type BufferSegment, VirtioTestDriver } from './virtio-driver.js';

export const GUEST_CID = 3;

// Captured before any test fakes timers, so polling keeps working under vi.useFakeTimers().
const realSetTimeout = globalThis.setTimeout;
const pause = (ms: number) => new Promise((resolve) => realSetTimeout(resolve, ms));

export interface ReceivedPacket {
  header: PacketHeader;
  payload: Buffer;
}

/** How a tx packet is laid out in descriptors. */
export type TxLayout =
  | 'one'        // header and payload in one descriptor
  | 'split'      // header, then payload (what Linux does)
  | 'scattered'; // header split in two, payload in 3 pieces

export interface GuestOptions {
  /** Directory for the socket (default: a fresh temp dir, removed by close()). */
  dir?: string;
  cid?: number;
  device?: Partial<VsockDeviceOptions>;
  /** Rx buffers kept posted (default 64). */
  rxBuffers?: number;
  /** Bytes per rx buffer, header included (default 4096, like Linux). */
  rxBufferSize?: number;
  /** Split each rx buffer into a header descriptor and a data descriptor. */
  rxSplit?: boolean;
  /** Repost rx buffers as packets are taken (default true). */
  autoRefill?: boolean;
  memorySize?: number;
  /** Offered features the simulated driver accepts (default: all, EVENT_IDX included). */
  driverFeatures?: bigint;
}

export class VsockTestGuest {
  readonly inbox: ReceivedPacket[] = [];
  autoRefill: boolean;
  private readonly rxBufferSize: number;
  private readonly rxSplit: boolean;
  private readonly rxTarget: number;

  private constructor(
    readonly device: VsockDevice,
    readonly driver: VirtioTestDriver,
    readonly socketPath: string,
    readonly cid: number,
    /** What the device reported through onWarning. */
    readonly warnings: string[],
    private readonly ownedDir: string | null,
    options: GuestOptions,
  ) {
    this.rxBufferSize = options.rxBufferSize ?? 4096;
    this.rxSplit = options.rxSplit ?? false;
    this.rxTarget = options.rxBuffers ?? 64;
    this.autoRefill = options.autoRefill ?? true;
  }

  static async start(options: GuestOptions = {}): Promise<VsockTestGuest> {
    const ownedDir = options.dir === undefined ? mkdtempSync(join(tmpdir(), 'tsvmm-vsock-')) : null;
    const dir = options.dir ?? ownedDir!;
    const cid = options.cid ?? GUEST_CID;
    const socketPath = join(dir, 'v.sock');
    const warnings: string[] = [];
    const device = await createVsockDevice({ cid, socketPath, onWarning: (m) => warnings.push(m), ...options.device });
    const driver = VirtioTestDriver.create(device, { memorySize: options.memorySize ?? 32 << 20, features: options.driverFeatures });
    const guest = new VsockTestGuest(device, driver, socketPath, cid, warnings, ownedDir, options);
    if (options.autoRefill ?? true) guest.refillRx();
    return guest;
  }

  /** Posts rx buffers until `rxTarget` are in flight, then kicks. */
  refillRx(count = this.rxTarget - this.driver.queue(0).inFlightCount): void {
    const rx = this.driver.queue(0);
    for (let i = 0; i < count && rx.freeDescriptorCount >= 2; i++) {
      const segments: BufferSegment[] = this.rxSplit
        ? [{ writable: HEADER_SIZE }, { writable: this.rxBufferSize - HEADER_SIZE }]
        : [{ writable: this.rxBufferSize }];
      rx.addBuffer(segments);
    }
    if (count > 0) rx.kick();
  }

  /** Sends one packet; fields default to a STREAM packet from this guest to the host with 256 KiB of credit. */
  send(fields: Partial<PacketHeader>, payload: Uint8Array = new Uint8Array(0), layout: TxLayout = 'split'): void {
    const header = this.header(fields, payload.byteLength);
    const bytes = new Uint8Array(HEADER_SIZE);
    encodeHeader(header, bytes);
    const tx = this.driver.queue(1);
    tx.takeUsed(); // reclaim earlier tx buffers
    tx.addBuffer(segmentsFor(bytes, payload, layout));
    tx.kick();
  }

  /** Sends raw bytes as one tx buffer (malformed-packet tests). */
  sendRaw(segments: BufferSegment[]): void {
    const tx = this.driver.queue(1);
    tx.takeUsed();
    tx.addBuffer(segments);
    tx.kick();
  }

  header(fields: Partial<PacketHeader>, len = 0): PacketHeader {
    return {
      srcCid: this.cid, dstCid: HOST_CID, srcPort: 0, dstPort: 0, len, type: VSOCK_TYPE_STREAM,
      op: Op.Rw, flags: 0, bufAlloc: 256 * 1024, fwdCnt: 0, ...fields,
    };
  }

  /** Moves used rx buffers into the inbox (and reposts buffers). */
  pump(): void {
    const used = this.driver.queue(0).takeUsed();
    for (const buffer of used) {
      if (buffer.length < HEADER_SIZE) {
        this.inbox.push({ header: { ...this.header({}), op: Op.Invalid, len: buffer.length }, payload: Buffer.alloc(0) });
        continue;
      }
      const header = decodeHeader(buffer.bytes);
      const payload = Buffer.from(buffer.bytes.subarray(HEADER_SIZE, HEADER_SIZE + header.len));
      this.inbox.push({ header, payload });
    }
    if (this.autoRefill && used.length > 0) this.refillRx();
  }

  /** Waits for (and removes from the inbox) the first packet matching `match`. */
  async nextPacket(match: (p: ReceivedPacket) => boolean = () => true, timeoutMs = 5000): Promise<ReceivedPacket> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.pump();
      const index = this.inbox.findIndex(match);
      if (index >= 0) return this.inbox.splice(index, 1)[0]!;
      if (Date.now() > deadline) {
        const seen = this.inbox.map((p) => `op${p.header.op} ${p.header.srcPort}->${p.header.dstPort}`).join(', ');
        throw new Error(`no matching vsock packet within ${timeoutMs} ms (inbox: ${seen || 'empty'})`);
      }
      await pause(1);
    }
  }

  /** Packets for guest port `port`, taken from the inbox now (no waiting). */
  takeFor(port: number): ReceivedPacket[] {
    this.pump();
    const mine = this.inbox.filter((p) => p.header.dstPort === port);
    for (const p of mine) this.inbox.splice(this.inbox.indexOf(p), 1);
    return mine;
  }

  /**
   * Collects RW payload for guest port `port` until `length` bytes arrived,
   * answering like Linux: a CREDIT_UPDATE after consuming, when asked with
   * CREDIT_REQUEST. Returns the bytes and the other packets seen.
   */
  async receiveStream(guestPort: number, hostPort: number, length: number, bufAlloc = 256 * 1024): Promise<{ data: Buffer; others: ReceivedPacket[] }> {
    const chunks: Buffer[] = [];
    const others: ReceivedPacket[] = [];
    let received = 0;
    while (received < length) {
      const p = await this.nextPacket((q) => q.header.dstPort === guestPort);
      if (p.header.op === Op.Rw) {
        chunks.push(p.payload);
        received += p.payload.length;
        // Consume at once and tell the host, as an app reading quickly would cause.
        this.send({ op: Op.CreditUpdate, srcPort: guestPort, dstPort: hostPort, bufAlloc, fwdCnt: received >>> 0 });
      } else if (p.header.op === Op.CreditRequest) {
        this.send({ op: Op.CreditUpdate, srcPort: guestPort, dstPort: hostPort, bufAlloc, fwdCnt: received >>> 0 });
      } else {
        others.push(p);
        if (p.header.op === Op.Rst || p.header.op === Op.Shutdown) break;
      }
    }
    return { data: Buffer.concat(chunks), others };
  }

  async close(): Promise<void> {
    await this.device.close();
    if (this.ownedDir !== null) rmSync(this.ownedDir, { recursive: true, force: true });
  }
}

function segmentsFor(header: Uint8Array, payload: Uint8Array, layout: TxLayout): BufferSegment[] {
  if (layout === 'one' || payload.byteLength === 0 && layout !== 'scattered') {
    const all = new Uint8Array(header.byteLength + payload.byteLength);
    all.set(header);
    all.set(payload, header.byteLength);
    return [{ readable: all }];
  }
  if (layout === 'split') return [{ readable: header }, { readable: payload }];
  const pieces: BufferSegment[] = [{ readable: header.subarray(0, 20) }, { readable: header.subarray(20) }];
  const third = Math.ceil(payload.byteLength / 3);
  for (let at = 0; at < payload.byteLength; at += third) {
    pieces.push({ readable: payload.subarray(at, Math.min(at + third, payload.byteLength)) });
  }
  return pieces;
}

// ---- host side ------------------------------------------------------------

/** Connects to the device's socket and writes the CONNECT line (plus `extra`). */
export async function hostConnect(socketPath: string, line: string | Buffer, extra?: Buffer): Promise<net.Socket> {
  const socket = net.createConnection({ path: socketPath, allowHalfOpen: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write(line);
  if (extra) socket.write(extra);
  return socket;
}

/** Collects what a socket receives, and how it ended. */
export class SocketRecorder {
  readonly chunks: Buffer[] = [];
  ended = false;
  closed = false;
  error: Error | null = null;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.chunks.push(chunk));
    socket.on('end', () => { this.ended = true; });
    socket.on('close', () => { this.closed = true; });
    socket.on('error', (e) => { this.error = e; });
  }

  /** The other side closed: EOF (our end stays open, as the socket is half-open capable), reset or close. */
  get gone(): boolean {
    return this.ended || this.closed || this.error !== null;
  }

  get data(): Buffer {
    return Buffer.concat(this.chunks);
  }

  get text(): string {
    return this.data.toString('latin1');
  }

  /** Resolves when `condition()` holds (polling the event loop). */
  async until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    await waitFor(condition, what, timeoutMs);
  }
}

export async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await pause(1);
  }
}

/** A host program listening on `${socketPath}_${port}` for guest-initiated connections. */
export class HostListener {
  readonly accepted: SocketRecorder[] = [];
  private constructor(readonly server: net.Server, readonly path: string) {}

  static async open(path: string, options: { pauseOnConnect?: boolean } = {}): Promise<HostListener> {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: options.pauseOnConnect ?? false });
    const listener = new HostListener(server, path);
    server.on('connection', (socket) => listener.accepted.push(new SocketRecorder(socket)));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // A backlog above the 1023-connection limit: a burst of guest connects
      // must not depend on how fast this (possibly loaded) process accepts.
      server.listen({ path, backlog: 2048 }, resolve);
    });
    return listener;
  }

  async close(): Promise<void> {
    for (const r of this.accepted) r.socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * The guest end of one established stream, with Linux's credit rules: it
 * sends only within the credit the host advertised, and consumes what it
 * receives at once, telling the host with CREDIT_UPDATE when the host would
 * otherwise stall (or when asked). For flow-control tests and benchmarks.
 */
export class GuestStream {
  /** Bytes the guest sent (tx_cnt). */
  sent = 0;
  /** Bytes the guest consumed (fwd_cnt). */
  consumed = 0;
  peerBufAlloc = 0;
  peerFwdCnt = 0;
  readonly received: Buffer[] = [];
  /** Control packets seen for this stream, other than RW and credit traffic. */
  readonly control: ReceivedPacket[] = [];
  /** Send CREDIT_UPDATEs for consumed bytes (turn off to play a guest whose reader is stuck). */
  consuming = true;
  private announced = 0;

  constructor(
    readonly guest: VsockTestGuest,
    readonly guestPort: number,
    readonly hostPort: number,
    readonly bufAlloc = 256 * 1024,
  ) {}

  get credit(): number {
    return Math.max(0, this.peerBufAlloc - ((this.sent - this.peerFwdCnt) >>> 0));
  }

  get receivedBytes(): number {
    return this.received.reduce((n, b) => n + b.length, 0);
  }

  /** Takes this stream's packets from the guest's inbox and reacts like Linux. */
  absorb(): number {
    const packets = this.guest.takeFor(this.guestPort);
    for (const p of packets) this.handle(p);
    return packets.length;
  }

  handle(p: ReceivedPacket): void {
    this.peerBufAlloc = p.header.bufAlloc;
    this.peerFwdCnt = p.header.fwdCnt;
    if (p.header.op === Op.Rw) {
      this.received.push(p.payload);
      if (this.consuming) this.consume(p.payload.length);
    } else if (p.header.op === Op.CreditRequest) {
      this.sendCreditUpdate();
    } else if (p.header.op !== Op.CreditUpdate) {
      this.control.push(p);
    }
  }

  consume(bytes: number): void {
    this.consumed = (this.consumed + bytes) >>> 0;
    // Linux: update when less than 64 KiB would be left in the host's view.
    if (this.bufAlloc - ((this.consumed - this.announced) >>> 0) < 64 * 1024 || this.bufAlloc <= 64 * 1024) {
      this.sendCreditUpdate();
    }
  }

  sendCreditUpdate(): void {
    this.announced = this.consumed;
    this.guest.send({ op: Op.CreditUpdate, srcPort: this.guestPort, dstPort: this.hostPort, bufAlloc: this.bufAlloc, fwdCnt: this.consumed });
  }

  /**
   * Sends `data` in RW packets of at most `chunk` bytes, within credit. Gives
   * up when no credit came back for `stallMs`: returns the bytes sent.
   */
  async write(data: Uint8Array, options: { chunk?: number; stallMs?: number } = {}): Promise<number> {
    const chunk = options.chunk ?? 64 * 1024;
    const stallMs = options.stallMs ?? 2000;
    let offset = 0;
    let idleSince = Date.now();
    while (offset < data.length) {
      this.absorb();
      const n = Math.min(chunk, data.length - offset, this.credit);
      if (n > 0) {
        this.guest.send(this.header(Op.Rw), data.subarray(offset, offset + n));
        this.sent = (this.sent + n) >>> 0;
        offset += n;
        idleSince = Date.now();
        continue;
      }
      if (Date.now() - idleSince > stallMs) break;
      await pause(1);
    }
    return offset;
  }

  /** Waits until `length` bytes have arrived in total. */
  async read(length: number, timeoutMs = 5000): Promise<Buffer> {
    await waitFor(() => {
      this.absorb();
      return this.receivedBytes >= length;
    }, `${length} bytes on guest port ${this.guestPort}`, timeoutMs);
    return Buffer.concat(this.received);
  }

  header(op: number, flags = 0): Partial<PacketHeader> {
    return { op, flags, srcPort: this.guestPort, dstPort: this.hostPort, bufAlloc: this.bufAlloc, fwdCnt: this.consumed };
  }
}
