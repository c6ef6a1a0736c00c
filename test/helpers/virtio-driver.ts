// A simulated guest driver for virtio-mmio devices: it drives an MmioTransport
// through its registers the way Linux's drivers/virtio/virtio_mmio.c and
// virtio_ring.c do, with its rings and buffers in a GuestMemory it owns.
// Used by the device tests (console, block, vsock) and by benchmarks.
//
//   const driver = VirtioTestDriver.create(device);           // reset .. DRIVER_OK
//   const rx = driver.queue(0);
//   rx.addBuffer([{ writable: 4096 }]); rx.kick();
//   driver.queue(1).addBuffer([{ readable: header }, { readable: payload }]);
//   driver.queue(1).kick();
//   const [used] = await rx.waitForUsed(1);                  // used.bytes = what the device wrote
//
// Low-level helpers (writeDescriptor, publish, setAvailIndex) write raw,
// possibly malformed, ring contents for the robustness tests.
import { GuestMemory } from '../../src/memory/guest-memory.js';
import type { InterruptLine } from '../../src/devices/interrupt-line.js';
import { VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_VERSION_1, type VirtioDevice } from '../../src/devices/virtio/device.js';
import {
  DeviceStatus, MmioRegister, MmioTransport, VIRTIO_MMIO_MAGIC, VIRTIO_MMIO_VERSION, type MmioTransportOptions,
} from '../../src/devices/virtio/mmio-transport.js';
import {
  DESCRIPTOR_SIZE, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE,
} from '../../src/devices/virtio/descriptor-chain.js';

export { DESCRIPTOR_SIZE, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE };
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
export const VIRTQ_USED_F_NO_NOTIFY = 1;

/** An InterruptLine that counts. */
export class CountingInterruptLine implements InterruptLine {
  count = 0;
  trigger(): void {
    this.count++;
  }
}

/** First-fit allocator over a range of guest memory (rings, buffers, indirect tables). */
export class GuestAllocator {
  private readonly freeBlocks: { address: number; size: number }[];
  private readonly sizes = new Map<number, number>();

  constructor(start: number, end: number) {
    this.freeBlocks = [{ address: start, size: end - start }];
  }

  alloc(size: number, alignment = 16): number {
    const length = Math.max(1, size);
    for (let i = 0; i < this.freeBlocks.length; i++) {
      const block = this.freeBlocks[i]!;
      const address = Math.ceil(block.address / alignment) * alignment;
      const waste = address - block.address;
      if (block.size < waste + length) continue;
      const pieces = [
        { address: block.address, size: waste },
        { address: address + length, size: block.size - waste - length },
      ].filter((p) => p.size > 0);
      this.freeBlocks.splice(i, 1, ...pieces);
      this.sizes.set(address, length);
      return address;
    }
    throw new Error(`guest allocator: no room for ${size} bytes`);
  }

  free(address: number): void {
    const size = this.sizes.get(address);
    if (size === undefined) throw new Error(`guest allocator: 0x${address.toString(16)} was not allocated`);
    this.sizes.delete(address);
    this.freeBlocks.push({ address, size });
    this.freeBlocks.sort((a, b) => a.address - b.address);
    for (let i = 0; i + 1 < this.freeBlocks.length;) {
      const a = this.freeBlocks[i]!;
      const b = this.freeBlocks[i + 1]!;
      if (a.address + a.size === b.address) {
        a.size += b.size;
        this.freeBlocks.splice(i + 1, 1);
      } else {
        i++;
      }
    }
  }
}

/** One part of a buffer: bytes for the device to read, or room for it to write. */
export type BufferSegment = { readable: Uint8Array } | { writable: number };

/** A buffer the device returned. */
export interface UsedBuffer {
  head: number;
  /** The length the device put in the used ring. */
  length: number;
  /** The writable segments concatenated, cut to `length`. */
  bytes: Uint8Array;
  /** The writable segments concatenated, whole (e.g. a status byte past `length`). */
  allWritable: Uint8Array;
}

/** A descriptor as the driver writes it (for raw, possibly malformed, tables). */
export interface RawDescriptor {
  address: number | bigint;
  length: number;
  flags: number;
  next: number;
}

interface InFlight {
  descriptors: number[];
  allocations: number[];
  writable: { address: number; length: number }[];
}

export interface VirtioDriverOptions {
  /** Guest memory to use (default: a fresh zeroed one of `memorySize` bytes). */
  memory?: GuestMemory;
  /** Default 8 MiB. */
  memorySize?: number;
  /** Guest range the driver allocates from (default: 4 KiB up to the end of memory). */
  heap?: { start: number; end: number };
  /** Offered features the driver accepts (default: all offered); VERSION_1 is always accepted. */
  features?: bigint;
  /** Queue sizes to configure (default: each queue's QueueNumMax). */
  queueSizes?: readonly number[];
  /** Go all the way to DRIVER_OK (default true). */
  initialize?: boolean;
  /** Passed to the transport; `log` defaults to collecting into driver.transportLog. */
  transport?: MmioTransportOptions;
}

export class VirtioTestDriver {
  readonly memory: GuestMemory;
  readonly transport: MmioTransport;
  readonly interrupts = new CountingInterruptLine();
  readonly allocator: GuestAllocator;
  /** What the transport reported (driver errors, failures). */
  readonly transportLog: string[] = [];
  /** Features the driver wrote in negotiate(). */
  features = 0n;
  private readonly queues: DriverQueue[] = [];

  static create(device: VirtioDevice, options: VirtioDriverOptions = {}): VirtioTestDriver {
    const driver = new VirtioTestDriver(device, options);
    if (options.initialize ?? true) driver.initialize(options.features, options.queueSizes);
    return driver;
  }

  private constructor(readonly device: VirtioDevice, options: VirtioDriverOptions) {
    this.memory = options.memory ?? GuestMemory.allocate(options.memorySize ?? 8 << 20);
    const heap = options.heap ?? { start: 0x1000, end: this.memory.size };
    this.allocator = new GuestAllocator(heap.start, heap.end);
    this.transport = new MmioTransport(device, this.memory, this.interrupts, {
      log: (message) => this.transportLog.push(message),
      ...options.transport,
    });
  }

  readRegister(offset: number): number {
    const data = new Uint8Array(4);
    this.transport.read(offset, data);
    return new DataView(data.buffer).getUint32(0, true);
  }

  writeRegister(offset: number, value: number): void {
    const data = new Uint8Array(4);
    new DataView(data.buffer).setUint32(0, value >>> 0, true);
    this.transport.write(offset, data);
  }

  readConfig(offset: number, length: number): Uint8Array {
    const data = new Uint8Array(length);
    this.transport.read(MmioRegister.Config + offset, data);
    return data;
  }

  writeConfig(offset: number, data: Uint8Array): void {
    this.transport.write(MmioRegister.Config + offset, data);
  }

  get status(): number {
    return this.readRegister(MmioRegister.Status);
  }

  get needsReset(): boolean {
    return (this.status & DeviceStatus.DeviceNeedsReset) !== 0;
  }

  /** The Linux sequence: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK, queues, DRIVER_OK. */
  initialize(features?: bigint, queueSizes?: readonly number[]): void {
    const magic = this.readRegister(MmioRegister.MagicValue);
    const version = this.readRegister(MmioRegister.Version);
    if (magic !== VIRTIO_MMIO_MAGIC || version !== VIRTIO_MMIO_VERSION) {
      throw new Error(`not a virtio-mmio v2 device (magic 0x${magic.toString(16)}, version ${version})`);
    }
    this.reset();
    this.addStatus(DeviceStatus.Acknowledge);
    this.addStatus(DeviceStatus.Driver);
    if (!this.negotiate(features)) throw new Error('the device refused FEATURES_OK');
    this.device.queueMaxSizes.forEach((_, i) => this.setupQueue(i, queueSizes?.[i]));
    this.addStatus(DeviceStatus.DriverOk);
  }

  /** Writes 0 to Status; the driver's queues are forgotten (their memory is leaked, as tests do not care). */
  reset(): void {
    this.writeRegister(MmioRegister.Status, 0);
    this.queues.length = 0;
  }

  addStatus(bits: number): void {
    this.writeRegister(MmioRegister.Status, this.status | bits);
  }

  /** Offered features (both 32-bit halves). */
  readDeviceFeatures(): bigint {
    this.writeRegister(MmioRegister.DeviceFeaturesSel, 1);
    const high = BigInt(this.readRegister(MmioRegister.DeviceFeatures));
    this.writeRegister(MmioRegister.DeviceFeaturesSel, 0);
    return (high << 32n) | BigInt(this.readRegister(MmioRegister.DeviceFeatures));
  }

  writeDriverFeatures(features: bigint): void {
    this.writeRegister(MmioRegister.DriverFeaturesSel, 1);
    this.writeRegister(MmioRegister.DriverFeatures, Number(features >> 32n));
    this.writeRegister(MmioRegister.DriverFeaturesSel, 0);
    this.writeRegister(MmioRegister.DriverFeatures, Number(features & 0xffff_ffffn));
    this.features = features;
  }

  /** Accepts `wanted` (default all) of the offered features plus VERSION_1; true when FEATURES_OK stuck. */
  negotiate(wanted = ~0n): boolean {
    const offered = this.readDeviceFeatures();
    this.writeDriverFeatures((offered & wanted) | (offered & VIRTIO_F_VERSION_1));
    this.addStatus(DeviceStatus.FeaturesOk);
    return (this.status & DeviceStatus.FeaturesOk) !== 0;
  }

  /** Allocates the three ring areas and enables queue `index` (as vm_setup_vq does). */
  setupQueue(index: number, size?: number): DriverQueue {
    this.writeRegister(MmioRegister.QueueSel, index);
    if (this.readRegister(MmioRegister.QueueReady) !== 0) throw new Error(`queue ${index} is already set up`);
    const max = this.readRegister(MmioRegister.QueueNumMax);
    if (max === 0) throw new Error(`queue ${index} does not exist`);
    const queueSize = size ?? max;
    const descTable = this.allocator.alloc(DESCRIPTOR_SIZE * queueSize, 4096);
    const availRing = this.allocator.alloc(6 + 2 * queueSize, 2);
    const usedRing = this.allocator.alloc(6 + 8 * queueSize, 4096);
    this.memory.fill(descTable, DESCRIPTOR_SIZE * queueSize);
    this.memory.fill(availRing, 6 + 2 * queueSize);
    this.memory.fill(usedRing, 6 + 8 * queueSize);
    this.writeRegister(MmioRegister.QueueNum, queueSize);
    this.writeAddress(MmioRegister.QueueDescLow, descTable);
    this.writeAddress(MmioRegister.QueueDriverLow, availRing);
    this.writeAddress(MmioRegister.QueueDeviceLow, usedRing);
    this.writeRegister(MmioRegister.QueueReady, 1);
    const queue = new DriverQueue(this, index, queueSize, descTable, availRing, usedRing);
    this.queues[index] = queue;
    return queue;
  }

  queue(index: number): DriverQueue {
    const queue = this.queues[index];
    if (!queue) throw new Error(`queue ${index} is not set up`);
    return queue;
  }

  /** What the guest's interrupt handler does: read InterruptStatus and acknowledge it. */
  acknowledgeInterrupt(): number {
    const status = this.readRegister(MmioRegister.InterruptStatus);
    if (status !== 0) this.writeRegister(MmioRegister.InterruptAck, status);
    return status;
  }

  private writeAddress(lowRegister: number, address: number): void {
    this.writeRegister(lowRegister, address % 2 ** 32);
    this.writeRegister(lowRegister + 4, Math.floor(address / 2 ** 32));
  }
}

/** The driver's side of one split virtqueue. */
export class DriverQueue {
  /** How many times the driver wrote QueueNotify for this queue. */
  kicks = 0;
  private readonly freeDescriptors: number[];
  private readonly inFlight = new Map<number, InFlight>();
  private availIdx = 0;
  private lastUsed = 0;
  private kickedAvailIdx = 0;
  private interruptsEnabled = true;

  constructor(
    private readonly driver: VirtioTestDriver,
    readonly index: number,
    readonly size: number,
    readonly descTable: number,
    readonly availRing: number,
    readonly usedRing: number,
  ) {
    this.freeDescriptors = Array.from({ length: size }, (_, i) => i);
  }

  private get memory(): GuestMemory {
    return this.driver.memory;
  }

  private get eventIdx(): boolean {
    return (this.driver.features & VIRTIO_F_RING_EVENT_IDX) !== 0n;
  }

  get freeDescriptorCount(): number {
    return this.freeDescriptors.length;
  }

  /** Buffers offered and not yet taken back. */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Offers a buffer; returns its head descriptor index. `indirect` puts the segments in an indirect table. */
  addBuffer(segments: readonly BufferSegment[], options: { indirect?: boolean } = {}): number {
    if (segments.length === 0) throw new Error('a buffer needs at least one segment');
    const needed = options.indirect ? 1 : segments.length;
    if (this.freeDescriptors.length < needed) throw new Error(`queue ${this.index}: no free descriptors`);
    const entry: InFlight = { descriptors: [], allocations: [], writable: [] };
    const raw = segments.map((segment): RawDescriptor => {
      const isWritable = 'writable' in segment;
      const length = isWritable ? segment.writable : segment.readable.byteLength;
      const address = this.driver.allocator.alloc(length, 8);
      entry.allocations.push(address);
      if (isWritable) {
        this.memory.fill(address, length);
        entry.writable.push({ address, length });
      } else {
        this.memory.write(address, segment.readable);
      }
      return { address, length, flags: isWritable ? VIRTQ_DESC_F_WRITE : 0, next: 0 };
    });
    let head: number;
    if (options.indirect) {
      const table = this.driver.allocator.alloc(DESCRIPTOR_SIZE * raw.length, 16);
      entry.allocations.push(table);
      raw.forEach((d, i) => {
        const last = i === raw.length - 1;
        this.writeDescriptorAt(table, i, { ...d, flags: d.flags | (last ? 0 : VIRTQ_DESC_F_NEXT), next: last ? 0 : i + 1 });
      });
      head = this.freeDescriptors.shift()!;
      entry.descriptors.push(head);
      this.writeDescriptor(head, { address: table, length: DESCRIPTOR_SIZE * raw.length, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
    } else {
      const indices = this.freeDescriptors.splice(0, raw.length);
      entry.descriptors.push(...indices);
      raw.forEach((d, i) => {
        const last = i === raw.length - 1;
        this.writeDescriptor(indices[i]!, { ...d, flags: d.flags | (last ? 0 : VIRTQ_DESC_F_NEXT), next: last ? 0 : indices[i + 1]! });
      });
      head = indices[0]!;
    }
    this.inFlight.set(head, entry);
    this.publish(head);
    return head;
  }

  /** Writes QueueNotify, always. */
  kick(): void {
    this.kicks++;
    this.kickedAvailIdx = this.availIdx;
    this.driver.writeRegister(MmioRegister.QueueNotify, this.index);
  }

  /** Kicks only if the device asked for it (avail_event with EVENT_IDX, else used.flags), like virtqueue_kick_prepare. */
  kickIfNeeded(): boolean {
    const previous = this.kickedAvailIdx;
    const current = this.availIdx;
    let needed: boolean;
    if (this.eventIdx) {
      const event = this.memory.readU16(this.usedRing + 4 + 8 * this.size);
      needed = ((current - event - 1) & 0xffff) < ((current - previous) & 0xffff);
    } else {
      needed = (this.memory.readU16(this.usedRing) & VIRTQ_USED_F_NO_NOTIFY) === 0;
    }
    if (needed) this.kick();
    else this.kickedAvailIdx = current;
    return needed;
  }

  /** The used ring's idx as the device last published it. */
  get usedIndex(): number {
    return this.memory.readU16(this.usedRing + 2);
  }

  /** New used entries as [head, length], without touching the driver's bookkeeping. */
  takeUsedRaw(): { head: number; length: number }[] {
    const entries: { head: number; length: number }[] = [];
    const usedIdx = this.usedIndex;
    while (this.lastUsed !== usedIdx) {
      const slot = this.usedRing + 4 + 8 * (this.lastUsed % this.size);
      entries.push({ head: this.memory.readU32(slot), length: this.memory.readU32(slot + 4) });
      this.lastUsed = (this.lastUsed + 1) & 0xffff;
    }
    if (this.interruptsEnabled && this.eventIdx) {
      this.memory.writeU16(this.availRing + 4 + 2 * this.size, this.lastUsed);
    }
    return entries;
  }

  /** New used buffers, with what the device wrote; frees their descriptors and memory. */
  takeUsed(): UsedBuffer[] {
    return this.takeUsedRaw().map(({ head, length }) => this.release(head, length, (entry, total) => {
      const allWritable = new Uint8Array(total);
      let offset = 0;
      for (const w of entry.writable) {
        this.memory.read(w.address, allWritable.subarray(offset, offset + w.length));
        offset += w.length;
      }
      return { head, length, bytes: allWritable.slice(0, length), allWritable };
    }));
  }

  /**
   * New used buffers, with only the last byte the device could write (a
   * block request's status): what a benchmark needs, without copying the
   * data out of guest memory as takeUsed() does. Frees them likewise.
   */
  takeUsedStatus(): { head: number; length: number; lastWritableByte: number }[] {
    return this.takeUsedRaw().map(({ head, length }) => this.release(head, length, (entry) => {
      const last = entry.writable.at(-1);
      if (!last) throw new Error(`queue ${this.index}: buffer ${head} has no writable segment`);
      return { head, length, lastWritableByte: this.memory.readU8(last.address + last.length - 1) };
    }));
  }

  /** Checks a used entry against what was offered, reads what `read` wants, then frees its descriptors and memory. */
  private release<T>(head: number, length: number, read: (entry: InFlight, writableBytes: number) => T): T {
    const entry = this.inFlight.get(head);
    if (!entry) throw new Error(`queue ${this.index}: device returned head ${head}, which is not in flight`);
    this.inFlight.delete(head);
    const total = entry.writable.reduce((sum, w) => sum + w.length, 0);
    if (length > total) throw new Error(`queue ${this.index}: device reported ${length} bytes written into ${total}`);
    const result = read(entry, total);
    entry.allocations.forEach((a) => this.driver.allocator.free(a));
    this.freeDescriptors.push(...entry.descriptors);
    return result;
  }

  /** Collects used buffers until there are at least `count` (lets async device work run in between). */
  async waitForUsed(count: number, timeoutMs = 5000): Promise<UsedBuffer[]> {
    const collected: UsedBuffer[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      collected.push(...this.takeUsed());
      if (collected.length >= count) return collected;
      if (Date.now() > deadline) {
        throw new Error(`queue ${this.index}: ${collected.length} of ${count} buffers used after ${timeoutMs} ms`);
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Asks for (or stops asking for) used-buffer interrupts, as virtqueue_enable_cb / disable_cb do. */
  setInterruptsEnabled(enabled: boolean): void {
    this.interruptsEnabled = enabled;
    this.memory.writeU16(this.availRing, enabled ? 0 : VIRTQ_AVAIL_F_NO_INTERRUPT);
    if (enabled && this.eventIdx) this.memory.writeU16(this.availRing + 4 + 2 * this.size, this.lastUsed);
  }

  // Raw access, for tests that write malformed rings.

  writeDescriptor(index: number, descriptor: RawDescriptor): void {
    this.writeDescriptorAt(this.descTable, index, descriptor);
  }

  writeDescriptorAt(table: number, index: number, { address, length, flags, next }: RawDescriptor): void {
    const at = table + DESCRIPTOR_SIZE * index;
    this.memory.writeU64(at, BigInt(address));
    this.memory.writeU32(at + 8, length);
    this.memory.writeU16(at + 12, flags);
    this.memory.writeU16(at + 14, next);
  }

  /** Puts `head` in the next avail slot and publishes it (no kick). */
  publish(head: number): void {
    this.memory.writeU16(this.availRing + 4 + 2 * (this.availIdx % this.size), head);
    this.setAvailIndex(this.availIdx + 1);
  }

  /** Writes avail.idx directly (e.g. to run it ahead of the device). */
  setAvailIndex(value: number): void {
    this.availIdx = value & 0xffff;
    this.memory.writeU16(this.availRing + 2, this.availIdx);
  }

  get availIndex(): number {
    return this.availIdx;
  }
}
