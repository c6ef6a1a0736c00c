// Throughput and latency through the vsock device path, driven by the
// simulated guest (no KVM): host Unix socket <-> device <-> virtqueues in a
// GuestMemory. The simulated guest runs on the same thread as the device, and
// recycles its buffers without touching their bytes, so what is measured is
// mostly the device, Node's sockets and the kernel. The driver notifies and
// takes interrupts as Linux's does (it kicks only when the device asked,
// virtqueue_kick_prepare), so the counts of both per packet are the device's
// doing. For benchmark scripts:
//
//   const { gbps } = await measureHostToGuest({ totalBytes: 512 << 20 });
import { VIRTIO_F_RING_EVENT_IDX } from '../../src/devices/virtio/device.js';
import type { VsockDeviceOptions } from '../../src/devices/virtio/vsock/device.js';
import { Op, HEADER_SIZE, encodeHeader } from '../../src/devices/virtio/vsock/packet.js';
import { GuestStream, HostListener, VsockTestGuest, hostConnect, waitFor } from './vsock-guest.js';

const immediate = () => new Promise((resolve) => setImmediate(resolve));

export interface ThroughputOptions {
  totalBytes?: number;
  /** Host write size (host -> guest) or guest packet size (guest -> host), default 64 KiB. */
  chunkSize?: number;
  /** Per-connection device buffer (default: the device's default). */
  connectionBufferSize?: number;
  /** Whether the driver accepts VIRTIO_F_RING_EVENT_IDX (default true, as Linux does). */
  eventIdx?: boolean;
}

/** One run: throughput, and what moving the packets cost in interrupts and queue notifications. */
export interface ThroughputResult {
  /** Bytes per ns, i.e. GB/s. */
  gbps: number;
  /** Data packets moved. */
  packets: number;
  /** Used-buffer interrupts the device raised. */
  interrupts: number;
  /** QueueNotify writes the driver made (each an exit under KVM). */
  notifications: number;
  /** CPU time of this whole process (device, simulated driver, host peer; all threads) per GiB moved, in seconds. */
  cpuSecondsPerGiB: number;
}

/** The driver's features: all the device offers, less EVENT_IDX when `eventIdx` is false. */
function driverFeatures(options: ThroughputOptions): bigint | undefined {
  return options.eventIdx === false ? ~VIRTIO_F_RING_EVENT_IDX : undefined;
}

/** The device options of a run: EVENT_IDX offered (the driver then takes it unless told not to). */
function deviceOptions(options: ThroughputOptions): Partial<VsockDeviceOptions> {
  return { eventIdx: true, ...(options.connectionBufferSize ? { connectionBufferSize: options.connectionBufferSize } : {}) };
}

const GiB = 1024 ** 3;

/** CPU seconds (user and system, all threads) per GiB moved. */
export function cpuSecondsPerGiB(cpu: NodeJS.CpuUsage, bytes: number): number {
  return (cpu.user + cpu.system) / 1e6 / (bytes / GiB);
}

interface CostCounters {
  interrupts: number;
  notifications: number;
  cpu: NodeJS.CpuUsage;
}

/** Interrupts, notifications and CPU time so far, to subtract the set-up's from a run's. */
function costCounters(guest: VsockTestGuest): CostCounters {
  const notifications = [0, 1, 2].reduce((sum, index) => sum + guest.driver.queue(index).kicks, 0);
  return { interrupts: guest.driver.interrupts.count, notifications, cpu: process.cpuUsage() };
}

function result(guest: VsockTestGuest, before: CostCounters, total: number, ns: number, packets: number): ThroughputResult {
  const after = costCounters(guest);
  return {
    gbps: total / ns, packets,
    interrupts: after.interrupts - before.interrupts, notifications: after.notifications - before.notifications,
    cpuSecondsPerGiB: cpuSecondsPerGiB(process.cpuUsage(before.cpu), total),
  };
}

/** A host program writes `totalBytes` to a guest port; the guest consumes it from 64 KiB rx buffers. */
export async function measureHostToGuest(options: ThroughputOptions = {}): Promise<ThroughputResult> {
  const total = options.totalBytes ?? 256 << 20;
  const chunk = Buffer.alloc(options.chunkSize ?? 64 * 1024, 1);
  const guest = await VsockTestGuest.start({
    rxBuffers: 64, rxBufferSize: 64 * 1024 + HEADER_SIZE, memorySize: 64 << 20, driverFeatures: driverFeatures(options),
    device: deviceOptions(options),
  });
  try {
    const socket = await hostConnect(guest.socketPath, 'CONNECT 5\n');
    const request = await guest.nextPacket((p) => p.header.op === Op.Request);
    const stream = new GuestStream(guest, 5, request.header.srcPort, 1 << 20);
    guest.send(stream.header(Op.Response));
    await new Promise<void>((resolve) => socket.once('data', () => resolve())); // "OK <port>\n"
    let written = 0;
    const pump = (): void => {
      while (written < total) {
        written += chunk.length;
        if (!socket.write(chunk)) {
          socket.once('drain', pump);
          return;
        }
      }
    };
    const rx = guest.driver.queue(0);
    const before = costCounters(guest);
    const start = process.hrtime.bigint();
    pump();
    let received = 0;
    let packets = 0;
    while (received < total) {
      const used = rx.takeUsedRaw();
      if (used.length === 0) {
        await immediate();
        continue;
      }
      let bytes = 0;
      for (const u of used) {
        bytes += u.length - HEADER_SIZE;
        rx.publish(u.head); // the same buffer, offered again
      }
      rx.kickIfNeeded();
      received += bytes;
      packets += used.length;
      guest.driver.queue(1).takeUsed();
      stream.consume(bytes);
    }
    const ns = Number(process.hrtime.bigint() - start);
    socket.destroy();
    return result(guest, before, total, ns, packets);
  } finally {
    await guest.close();
  }
}

/** The guest sends `totalBytes` in RW packets of `chunkSize` to a host listener, within credit. */
export async function measureGuestToHost(options: ThroughputOptions = {}): Promise<ThroughputResult> {
  const total = options.totalBytes ?? 256 << 20;
  const packetSize = options.chunkSize ?? 64 * 1024;
  const guest = await VsockTestGuest.start({
    memorySize: 64 << 20, driverFeatures: driverFeatures(options),
    device: deviceOptions(options),
  });
  const listener = await HostListener.open(`${guest.socketPath}_6`);
  try {
    guest.send({ op: Op.Request, srcPort: 6, dstPort: 6 });
    const response = await guest.nextPacket((p) => p.header.dstPort === 6);
    await waitFor(() => listener.accepted.length === 1, 'the host to accept');
    const host = listener.accepted[0]!.socket;
    let received = 0;
    host.removeAllListeners('data');
    host.on('data', (c: Buffer) => { received += c.length; });
    const stream = new GuestStream(guest, 6, 6);
    stream.handle(response);

    // 64 tx buffers, written once and offered again and again.
    const tx = guest.driver.queue(1);
    tx.takeUsed();
    const header = new Uint8Array(HEADER_SIZE);
    encodeHeader(guest.header({ op: Op.Rw, srcPort: 6, dstPort: 6 }, packetSize), header);
    const free: number[] = [];
    for (let i = 0; i < 64; i++) free.push(tx.addBuffer([{ readable: header }, { readable: Buffer.alloc(packetSize, i) }]));
    tx.setAvailIndex(tx.availIndex - 64);

    const before = costCounters(guest);
    const start = process.hrtime.bigint();
    let sent = 0;
    let packets = 0;
    while (received < total) {
      stream.absorb();
      for (const u of tx.takeUsedRaw()) free.push(u.head);
      let added = 0;
      while (sent < total && stream.credit >= packetSize && free.length > 0) {
        tx.publish(free.shift()!);
        stream.sent = (stream.sent + packetSize) >>> 0;
        sent += packetSize;
        added++;
      }
      if (added > 0) tx.kickIfNeeded();
      packets += added;
      await immediate();
    }
    return result(guest, before, total, Number(process.hrtime.bigint() - start), packets);
  } finally {
    await listener.close();
    await guest.close();
  }
}

/** Host writes `messageSize` bytes, the guest echoes them, the host waits for the echo. Returns round-trip times in ns, sorted. */
export async function measureRoundTrips(options: { rounds?: number; messageSize?: number } = {}): Promise<number[]> {
  const rounds = options.rounds ?? 10_000;
  const message = Buffer.alloc(options.messageSize ?? 64, 7);
  const guest = await VsockTestGuest.start();
  try {
    const socket = await hostConnect(guest.socketPath, 'CONNECT 5\n');
    const request = await guest.nextPacket((p) => p.header.op === Op.Request);
    const stream = new GuestStream(guest, 5, request.header.srcPort);
    guest.send(stream.header(Op.Response));
    await new Promise<void>((resolve) => socket.once('data', () => resolve())); // "OK <port>\n"

    const times: number[] = [];
    let echoed = 0;
    let start = 0n;
    const done = new Promise<void>((resolve) => {
      socket.on('data', (d: Buffer) => {
        echoed += d.length;
        if (echoed < message.length) return;
        echoed = 0;
        times.push(Number(process.hrtime.bigint() - start));
        if (times.length === rounds) return resolve();
        start = process.hrtime.bigint();
        socket.write(message);
      });
    });
    // The guest: on each interrupt, echo what arrived (as an app blocked in read() would).
    let seen = guest.driver.interrupts.count;
    let stop = false;
    const guestLoop = (): void => {
      if (stop) return;
      if (guest.driver.interrupts.count !== seen) {
        seen = guest.driver.interrupts.count;
        for (const p of guest.takeFor(5)) {
          stream.handle(p);
          if (p.header.op === Op.Rw) guest.send(stream.header(Op.Rw), p.payload);
        }
      }
      setImmediate(guestLoop);
    };
    guestLoop();
    start = process.hrtime.bigint();
    socket.write(message);
    await done;
    stop = true;
    socket.destroy();
    return times.sort((a, b) => a - b);
  } finally {
    await guest.close();
  }
}
