// A seeded fuzzer for the vsock device, driven through the simulated guest
// driver with real Unix sockets on the host side. Each step is one random
// action: a guest packet (random header fields, ops, types, lengths, credit
// values and ports, in random descriptor layouts: one piece, split,
// scattered, too short for a header, with a trailing writable part; and
// now and then an indirect chain, which must fail the device), rx buffers of random sizes, host programs connecting, writing,
// pausing and closing, device and transport resets, or a turn of the event
// loop. After every step it checks that:
//
//   - no exception escaped, and the device never failed (every chain it gets
//     is valid virtio, so whatever the vsock packets say is no reason to);
//   - the connection and waiting-client limits hold, and the bytes the
//     connections hold stay under memoryBound();
// and at the end, after a device reset and close, that every host socket
// was closed and that each one received nothing but a run of the payloads
// the guest sent, in order, on a connection the device had established.
//
// The same seed replays the same guest and host actions (the order in which
// socket events arrive may still differ between runs).
import net from 'node:net';
import { HEADER_SIZE, HOST_CID, Op, type PacketHeader, VSOCK_TYPE_STREAM, decodeHeader, encodeHeader } from '../../../src/devices/virtio/vsock/packet.js';
import type { BufferSegment } from '../../helpers/virtio-driver.js';
import { HostListener, SocketRecorder, VsockTestGuest, waitFor } from '../../helpers/vsock-guest.js';

/** Small, so that limits and credit are hit often. */
const DEVICE = {
  maxConnections: 6,
  maxPendingClients: 3,
  connectionBufferSize: 4096,
  // Short enough for the timers to fire within a run, long enough not to fire on every step.
  requestTimeoutMs: 50,
  connectTimeoutMs: 50,
  lingerTimeoutMs: 50,
  connectLineTimeoutMs: 50,
  queueSize: 64,
} as const;

const GUEST_PORTS = [1000, 1001, 1002, 1003];
/** Host ports with a listener; LISTENER_LESS_PORT has none (connects fail). */
const LISTENING_PORTS = [500, 501];
const LISTENER_LESS_PORT = 502;
const HOST_PORTS = [...LISTENING_PORTS, LISTENER_LESS_PORT];

/** libuv reads a stream at most 64 KiB at a time (uv__read's buffer). */
const SOCKET_READ_MAX = 64 * 1024;
/** How much Node's socket reads ahead of its consumer (an unconnected socket opens no fd). */
const SOCKET_HIGH_WATER_MARK = new net.Socket().readableHighWaterMark;

/**
 * The most the device's connections may hold in memory: per connection, the
 * guest data it accepted within the credit it gave (bufferSize), host data
 * for the guest (it stops reading at bufferSize, but one read may overshoot
 * by SOCKET_READ_MAX), and what Node's socket reads on after we paused it
 * (up to its high-water mark, plus one read).
 */
export function memoryBound(): number {
  const perConnection = DEVICE.connectionBufferSize + (DEVICE.connectionBufferSize + SOCKET_READ_MAX) + (SOCKET_HIGH_WATER_MARK + SOCKET_READ_MAX);
  return DEVICE.maxConnections * perConnection;
}

/** mulberry32: a tiny seeded PRNG, plenty for choosing actions. */
export class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  }
  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)]!;
  }
  u32(): number {
    return (this.next() * 2 ** 32) >>> 0;
  }
  bytes(n: number): Buffer {
    const data = Buffer.alloc(n);
    for (let i = 0; i < n; i++) data[i] = this.below(256);
    return data;
  }
  /** Mostly small sizes, sometimes large ones, sometimes exactly `edges`. */
  size(max: number, edges: readonly number[] = []): number {
    const r = this.next();
    if (r < 0.2 && edges.length > 0) return Math.min(max, this.pick(edges));
    if (r < 0.7) return this.below(Math.min(max, 64) + 1);
    return this.below(max + 1);
  }
}

export interface FuzzResult {
  readonly seed: number;
  readonly steps: number;
  readonly guestPackets: number;
  /** Bytes the host sockets received from the guest. */
  readonly bytesToHost: number;
  readonly connectionsSeen: number;
  readonly maxBufferedBytes: number;
}

export class FuzzFailure extends Error {
  constructor(readonly seed: number, readonly step: number, message: string, trail: readonly string[]) {
    super(`vsock fuzz seed ${seed}, step ${step}: ${message}\n` +
      `  replay: npm run fuzz -- --seed ${seed} --seeds 1 --steps ${step + 1}\n` +
      `  last actions:\n    ${trail.join('\n    ')}`);
    this.name = 'FuzzFailure';
  }
}

const keyOf = (hostPort: number, guestPort: number) => `${hostPort}:${guestPort}`;

/** A guest RW the device may forward (established connection) or must not; or a point where a new connection may begin. */
type SentEntry = { payload: Buffer; eligible: boolean } | 'new-connection';

/** A host program connecting through the device's socket to a guest port. */
interface HostClient {
  recorder: SocketRecorder;
  guestPort: number;
}

/** Runs one seed for `steps` steps; resolves with statistics, rejects with a FuzzFailure. */
export async function fuzzVsock(seed: number, steps: number): Promise<FuzzResult> {
  const run = new FuzzRun(seed);
  await run.start();
  try {
    for (let step = 0; step < steps; step++) {
      run.step = step;
      try {
        await run.randomAction();
        run.checkInvariants();
      } catch (error) {
        throw run.failure((error as Error).message);
      }
    }
    run.step = steps;
    try {
      await run.finish();
    } catch (error) {
      throw run.failure((error as Error).message);
    }
    return run.result(steps);
  } finally {
    await run.close();
  }
}

class FuzzRun {
  step = 0;
  private guest!: VsockTestGuest;
  private readonly random: Random;
  private readonly listeners: HostListener[] = [];
  private readonly clients: HostClient[] = [];
  /** What the guest sent as RW, per connection key, in order. */
  private readonly sent = new Map<string, SentEntry[]>();
  /** Port pairs seen in packets from the device (host-initiated connections among them). */
  private readonly knownKeys = new Map<string, { hostPort: number; guestPort: number }>();
  private readonly trail: string[] = [];
  private guestPackets = 0;
  private maxBuffered = 0;

  constructor(readonly seed: number) {
    this.random = new Random(seed);
  }

  async start(): Promise<void> {
    this.guest = await VsockTestGuest.start({ device: DEVICE, autoRefill: false });
    for (const port of LISTENING_PORTS) {
      this.listeners.push(await HostListener.open(`${this.guest.socketPath}_${port}`));
    }
    this.postRxBuffers(16);
  }

  failure(message: string): FuzzFailure {
    return new FuzzFailure(this.seed, this.step, message, this.trail.slice(-12));
  }

  private note(action: string): void {
    this.trail.push(`${this.step}: ${action}`);
    if (this.trail.length > 64) this.trail.splice(0, this.trail.length - 64);
  }

  async randomAction(): Promise<void> {
    const r = this.random;
    const roll = r.below(100);
    if (roll < 30) this.guestPacket();
    else if (roll < 36) this.guestRequest();
    else if (roll < 40) this.malformedPacket();
    else if (roll < 52) this.postRxBuffers(1 + r.below(8));
    else if (roll < 62) this.takeRx();
    else if (roll < 68) await this.hostConnect();
    else if (roll < 78) this.hostWrite();
    else if (roll < 82) this.hostPauseOrResume();
    else if (roll < 86) this.hostClose();
    else if (roll < 87) this.deviceReset();
    else if (roll === 87) this.transportReset();
    else if (roll === 88 && r.chance(0.5)) this.indirectChain();
    else await this.yieldToEventLoop();
  }

  // ---- guest actions -------------------------------------------------

  /** Port pairs: mostly of live connections, so that packets get past the routing; sometimes any. */
  private randomKey(): { hostPort: number; guestPort: number } {
    const r = this.random;
    const known = [...this.knownKeys.values()];
    const established = known.filter((k) => this.guest.device.connectionState(k.hostPort, k.guestPort) === 'established');
    if (established.length > 0 && r.chance(0.5)) return r.pick(established);
    if (known.length > 0 && r.chance(0.6)) return r.pick(known);
    return { hostPort: r.chance(0.1) ? r.u32() : r.pick(HOST_PORTS), guestPort: r.chance(0.1) ? r.u32() : r.pick(GUEST_PORTS) };
  }

  private guestRequest(): void {
    const { hostPort, guestPort } = this.randomKey();
    this.learn(hostPort, guestPort);
    this.sendPacket(this.header({ op: Op.Request, srcPort: guestPort, dstPort: hostPort }), Buffer.alloc(0));
  }

  /** A packet on some connection, mostly well-formed, with random op, credit, flags and length. */
  private guestPacket(): void {
    const r = this.random;
    const { hostPort, guestPort } = this.randomKey();
    const op = r.chance(0.5) ? Op.Rw : r.chance(0.9) ? r.pick([Op.Response, Op.Rst, Op.Shutdown, Op.CreditUpdate, Op.CreditRequest, Op.Invalid]) : r.below(0x10000);
    const payload = op === Op.Rw || r.chance(0.05) ? r.bytes(r.size(6000, [1, 1000, 2000, DEVICE.connectionBufferSize, DEVICE.connectionBufferSize + 1])) : Buffer.alloc(0);
    const sane = r.chance(0.9);
    const header = this.header({
      op, srcPort: guestPort, dstPort: hostPort,
      len: r.chance(0.9) ? payload.length : r.size(8000, [0, payload.length + 1, 0xffff_ffff]),
      flags: r.chance(0.9) ? r.below(4) : r.u32(),
      bufAlloc: sane ? r.pick([0, 4096, 65536, 256 * 1024]) : r.u32(),
      fwdCnt: sane ? r.below(1 << 20) : r.u32(),
      srcCid: r.chance(0.95) ? this.guest.cid : r.pick([0, 1, HOST_CID, this.guest.cid + 1, 2 ** 32 + this.guest.cid]),
      dstCid: r.chance(0.95) ? HOST_CID : r.pick([0, 1, this.guest.cid, 0xffff_ffff]),
      type: r.chance(0.95) ? VSOCK_TYPE_STREAM : r.below(0x10000),
    });
    this.sendPacket(header, payload);
  }

  /** Random header bytes, or a buffer too short to hold a header. */
  private malformedPacket(): void {
    const r = this.random;
    if (r.chance(0.5)) {
      const bytes = r.bytes(r.below(HEADER_SIZE));
      this.note(`short tx buffer of ${bytes.length} bytes`);
      this.pushTx(this.layout(bytes));
      return;
    }
    const raw = r.bytes(HEADER_SIZE);
    this.sendPacket(decodeHeader(raw), r.bytes(r.size(200)), raw);
  }

  private header(fields: Partial<PacketHeader>): PacketHeader {
    return this.guest.header(fields);
  }

  /** Sends a packet, recording any RW payload the device might forward, and whether it may. */
  private sendPacket(header: PacketHeader, payload: Buffer, rawHeader?: Buffer): void {
    let bytes = rawHeader;
    if (bytes === undefined) {
      bytes = Buffer.alloc(HEADER_SIZE);
      encodeHeader(header, bytes);
    }
    const segments = this.layout(Buffer.concat([bytes, payload]));
    if (this.guest.driver.queue(1).freeDescriptorCount < segments.length) return;
    const key = keyOf(header.dstPort, header.srcPort);
    const addressed = header.srcCid === this.guest.cid && header.dstCid === HOST_CID && header.type === VSOCK_TYPE_STREAM;
    if (addressed && (header.op === Op.Request || header.op === Op.Response)) this.record(key, 'new-connection');
    if (addressed && header.op === Op.Rw && header.len > 0) {
      const state = this.guest.device.connectionState(header.dstPort, header.srcPort);
      const fits = header.len <= payload.length;
      this.record(key, { payload: payload.subarray(0, fits ? header.len : 0), eligible: fits && state === 'established' });
    }
    this.note(`guest op ${header.op} ${header.srcCid}:${header.srcPort} -> ${header.dstCid}:${header.dstPort} type ${header.type} len ${header.len}/${payload.length} flags ${header.flags} buf ${header.bufAlloc} fwd ${header.fwdCnt}`);
    this.guestPackets++;
    this.pushTx(segments);
  }

  private record(key: string, entry: SentEntry): void {
    let list = this.sent.get(key);
    if (list === undefined) this.sent.set(key, list = []);
    list.push(entry);
  }

  /** Cuts a packet into 1-6 readable pieces at random points (zero-length ones too), sometimes with a writable tail. */
  private layout(packet: Buffer): BufferSegment[] {
    const r = this.random;
    const pieces = 1 + r.below(6);
    const cuts = Array.from({ length: pieces - 1 }, () => r.below(packet.length + 1)).sort((a, b) => a - b);
    const segments: BufferSegment[] = [];
    let at = 0;
    for (const cut of [...cuts, packet.length]) {
      segments.push({ readable: packet.subarray(at, cut) });
      at = cut;
    }
    if (r.chance(0.05)) segments.push({ writable: 1 + r.below(64) });
    return segments;
  }

  private pushTx(segments: BufferSegment[]): void {
    const tx = this.guest.driver.queue(1);
    tx.takeUsed();
    if (tx.freeDescriptorCount < segments.length) return;
    tx.addBuffer(segments);
    tx.kick();
  }

  /**
   * An indirect chain, which this device does not offer (VIRTIO_F_RING_INDIRECT_DESC):
   * a broken ring, so the device must fail, drop every connection, and work
   * again after the driver resets it.
   */
  private indirectChain(): void {
    this.note('indirect tx chain (not negotiated)');
    const { driver, device } = this.guest;
    const tx = driver.queue(1);
    tx.takeUsed();
    tx.addBuffer([{ readable: Buffer.alloc(HEADER_SIZE) }], { indirect: true });
    tx.kick();
    if (!driver.needsReset) throw new Error('an indirect chain without VIRTIO_F_RING_INDIRECT_DESC did not fail the device');
    if (device.connectionCount !== 0) throw new Error(`${device.connectionCount} connections survived the device failure`);
    driver.transportLog.length = 0;
    this.reinitialize();
  }

  /** Rx buffers of random sizes (too small for a header, exactly one, odd, large), some split in two. */
  postRxBuffers(count: number): void {
    const r = this.random;
    const rx = this.guest.driver.queue(0);
    for (let i = 0; i < count && rx.freeDescriptorCount >= 2; i++) {
      const size = r.pick([8, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 1, 100, 1500, 4096, 4096, 4096, 65536 + HEADER_SIZE]);
      const split = size > HEADER_SIZE && r.chance(0.3);
      rx.addBuffer(split ? [{ writable: HEADER_SIZE }, { writable: size - HEADER_SIZE }] : [{ writable: size }]);
    }
    this.note(`post ${count} rx buffers`);
    rx.kick();
  }

  /**
   * Takes what the device wrote into rx buffers, checking each packet's
   * addressing, and learns port pairs. Mostly accepts the host's REQUESTs
   * (as a listening guest would), so host-initiated streams get going.
   */
  private takeRx(): void {
    this.guest.pump();
    const answers: PacketHeader[] = [];
    for (const { header } of this.guest.inbox.splice(0)) {
      if (header.op === Op.Invalid && header.len < HEADER_SIZE) continue; // a buffer too small, given back empty
      // An RST answers a packet to another CID or of another type as if from there, so that Linux finds the socket.
      const fromHost = header.srcCid === HOST_CID && header.type === VSOCK_TYPE_STREAM;
      if (header.dstCid !== this.guest.cid || (!fromHost && header.op !== Op.Rst)) {
        throw new Error(`the device sent op ${header.op} addressed ${header.srcCid} -> ${header.dstCid}, type ${header.type}`);
      }
      if (header.op < Op.Request || header.op > Op.CreditRequest) throw new Error(`the device sent op ${header.op}`);
      this.learn(header.srcPort, header.dstPort);
      if (header.op === Op.Request && this.random.chance(0.7)) {
        answers.push(this.header({ op: Op.Response, srcPort: header.dstPort, dstPort: header.srcPort }));
      }
    }
    this.note('take rx');
    for (const answer of answers) this.sendPacket(answer, Buffer.alloc(0));
  }

  private learn(hostPort: number, guestPort: number): void {
    const key = keyOf(hostPort, guestPort);
    this.knownKeys.delete(key); // to the back: the newest are kept
    this.knownKeys.set(key, { hostPort, guestPort });
    if (this.knownKeys.size > 32) this.knownKeys.delete(this.knownKeys.keys().next().value as string);
  }

  private deviceReset(): void {
    this.note('device reset');
    this.reinitialize();
  }

  private reinitialize(): void {
    this.guest.driver.reset();
    this.guest.driver.initialize();
    this.guest.inbox.length = 0;
    for (const key of this.sent.keys()) this.record(key, 'new-connection');
    this.postRxBuffers(16);
  }

  private transportReset(): void {
    this.note('transport reset event');
    const events = this.guest.driver.queue(2);
    events.takeUsed();
    if (events.freeDescriptorCount > 0) events.addBuffer([{ writable: 4 }]);
    events.kick();
    this.guest.device.sendTransportReset();
    for (const key of this.sent.keys()) this.record(key, 'new-connection');
  }

  // ---- host actions --------------------------------------------------

  private async hostConnect(): Promise<void> {
    const r = this.random;
    const guestPort = r.pick(GUEST_PORTS);
    const line = r.pick([`CONNECT ${guestPort}\n`, `CONNECT ${guestPort}\n`, `connect ${guestPort}\r\n`, 'CONNE', '', 'HELLO\n', `CONNECT ${guestPort}`]);
    const extra = r.chance(0.3) ? r.bytes(r.size(2000)) : Buffer.alloc(0);
    this.note(`host connects: ${JSON.stringify(line)} + ${extra.length} bytes`);
    const socket = net.createConnection({ path: this.guest.socketPath, allowHalfOpen: true });
    const recorder = new SocketRecorder(socket);
    this.clients.push({ recorder, guestPort });
    socket.write(Buffer.concat([Buffer.from(line, 'latin1'), extra]));
    await new Promise<void>((resolve) => {
      socket.once('connect', resolve);
      socket.once('close', () => resolve());
    });
  }

  /** Every host socket: the fuzzer's clients and what the listeners accepted. */
  private hostSockets(): SocketRecorder[] {
    return [...this.clients.map((c) => c.recorder), ...this.listeners.flatMap((l) => l.accepted)];
  }

  private randomLiveHostSocket(): SocketRecorder | undefined {
    const live = this.hostSockets().filter((s) => !s.socket.destroyed && s.socket.writable);
    return live.length === 0 ? undefined : this.random.pick(live);
  }

  private hostWrite(): void {
    const target = this.randomLiveHostSocket();
    if (target === undefined) return;
    const data = this.random.bytes(this.random.size(100_000, [DEVICE.connectionBufferSize, SOCKET_READ_MAX + 1]));
    this.note(`host writes ${data.length} bytes`);
    target.socket.write(data);
  }

  /** A host reader that stops and starts reading: the guest's writes must wait, not pile up. */
  private hostPauseOrResume(): void {
    const target = this.randomLiveHostSocket();
    if (target === undefined) return;
    const pause = this.random.chance(0.5);
    this.note(pause ? 'host pauses a socket' : 'host resumes a socket');
    if (pause) target.socket.pause();
    else target.socket.resume();
  }

  private hostClose(): void {
    const target = this.randomLiveHostSocket();
    if (target === undefined) return;
    const how = this.random.pick(['end', 'destroy'] as const);
    this.note(`host socket ${how}`);
    target.socket[how]();
  }

  private async yieldToEventLoop(): Promise<void> {
    const r = this.random;
    if (r.chance(0.8)) {
      await new Promise((resolve) => setImmediate(resolve));
    } else {
      // Long enough, now and then, for the device's short timers to fire.
      const ms = r.below(DEVICE.requestTimeoutMs + 10);
      this.note(`wait ${ms} ms`);
      await new Promise((resolve) => setTimeout(resolve, ms));
    }
  }

  // ---- invariants ----------------------------------------------------

  checkInvariants(): void {
    const { device, driver } = this.guest;
    if (driver.transportLog.length > 0) throw new Error(`the device failed: ${driver.transportLog.join('; ')}`);
    if (driver.needsReset) throw new Error('the device set DEVICE_NEEDS_RESET');
    if (device.connectionCount > DEVICE.maxConnections) {
      throw new Error(`${device.connectionCount} connections are live, over the limit of ${DEVICE.maxConnections}`);
    }
    if (device.pendingHostClientCount > DEVICE.maxPendingClients) {
      throw new Error(`${device.pendingHostClientCount} clients wait for their CONNECT line, over the limit of ${DEVICE.maxPendingClients}`);
    }
    const buffered = device.bufferedBytes;
    this.maxBuffered = Math.max(this.maxBuffered, buffered);
    if (buffered > memoryBound()) throw new Error(`the connections hold ${buffered} bytes, over the bound of ${memoryBound()}`);
  }

  /** Device reset, then close: every host socket must be closed; then the data check. */
  async finish(): Promise<void> {
    this.note('finish: device reset');
    this.guest.driver.reset();
    if (this.guest.device.connectionCount !== 0) throw new Error(`${this.guest.device.connectionCount} connections survived a device reset`);
    await this.guest.device.close();
    const sockets = this.hostSockets();
    // A paused socket would never notice its peer is gone: a host program that stopped reading is not ours to wait for.
    for (const s of sockets) s.socket.resume();
    await waitFor(() => sockets.every((s) => s.gone), 'every host socket to be closed after device reset and close', 10_000)
      .catch(() => {
        throw new Error(`${sockets.filter((s) => !s.gone).length} of ${sockets.length} host sockets still open after device reset and close`);
      });
    this.checkHostData();
  }

  /** Each host socket received a run of consecutive RW payloads, sent on an established connection of one key. */
  private checkHostData(): void {
    for (const [index, listener] of this.listeners.entries()) {
      const hostPort = LISTENING_PORTS[index]!;
      for (const accepted of listener.accepted) {
        const keys = [...this.sent.keys()].filter((k) => k.startsWith(`${hostPort}:`));
        this.expectRunOfPayloads(accepted.data, keys, `a socket accepted on host port ${hostPort}`);
      }
    }
    for (const client of this.clients) {
      const data = client.recorder.data;
      const newline = data.indexOf(0x0a);
      const ok = newline < 0 ? null : /^OK (\d+)$/.exec(data.toString('latin1', 0, newline));
      if (ok === null) {
        if (data.length > 0) throw new Error(`a host client to guest port ${client.guestPort} got ${data.length} bytes without an OK line`);
        continue;
      }
      const key = keyOf(Number(ok[1]), client.guestPort);
      this.expectRunOfPayloads(data.subarray(newline + 1), [key], `the host client of ${key}`);
    }
  }

  private expectRunOfPayloads(received: Buffer, keys: readonly string[], who: string): void {
    if (received.length === 0) return;
    for (const key of keys) {
      for (const run of eligibleRuns(this.sent.get(key) ?? [])) {
        // The last payload may arrive cut short: the device destroys a reset connection's socket.
        for (const start of run.starts) {
          if (start + received.length <= run.bytes.length && run.bytes.subarray(start, start + received.length).equals(received)) return;
        }
      }
    }
    throw new Error(`${who} received ${received.length} bytes that are no run of payloads the guest sent on an established connection`);
  }

  result(steps: number): FuzzResult {
    const bytesToHost = this.hostSockets().reduce((n, s) => n + s.data.length, 0);
    return {
      seed: this.seed, steps, guestPackets: this.guestPackets, bytesToHost,
      connectionsSeen: this.knownKeys.size, maxBufferedBytes: this.maxBuffered,
    };
  }

  async close(): Promise<void> {
    for (const socket of this.hostSockets()) socket.socket.destroy();
    for (const listener of this.listeners) await listener.close();
    await this.guest.close();
  }
}

/** Runs of consecutive eligible payloads, each concatenated, with the offsets where its payloads start. */
function eligibleRuns(entries: readonly SentEntry[]): { bytes: Buffer; starts: number[] }[] {
  const runs: { bytes: Buffer; starts: number[] }[] = [];
  let pieces: Buffer[] = [];
  let starts: number[] = [];
  let length = 0;
  const close = (): void => {
    if (pieces.length > 0) runs.push({ bytes: Buffer.concat(pieces), starts });
    pieces = [];
    starts = [];
    length = 0;
  };
  for (const entry of entries) {
    if (entry === 'new-connection' || !entry.eligible) {
      close();
      continue;
    }
    starts.push(length);
    pieces.push(entry.payload);
    length += entry.payload.length;
  }
  close();
  return runs;
}
