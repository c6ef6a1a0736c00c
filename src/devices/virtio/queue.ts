// The device side of a split virtqueue (virtio 1.x spec 2.7): the driver
// offers buffers in the available ring, the device hands them back in the
// used ring. Three areas of guest memory, all set up by the driver:
//
//   descriptor table  size x 16 bytes, 16-aligned   (descriptor-chain.ts)
//   available ring    le16 flags, le16 idx, le16 ring[size], le16 used_event;   2-aligned
//   used ring         le16 flags, le16 idx, {le32 id, le32 len}[size], le16 avail_event; 4-aligned
//
// `idx` fields are free-running 16-bit counters; entry i lives in slot i % size.
//
// The guest's vCPUs run while we read and write these rings, so the index
// fields go through Atomics: a seq-cst store is also the full barrier that
// spec 2.7.7.2 / 2.7.10 ask for between "publish used idx" and "read
// used_event" (and between "write avail_event" and "re-read avail idx").
// The typed-array views use host byte order: virtio is little-endian, and so
// are the hosts KVM runs tsvmm on (x86_64).
import { trace } from '../../trace.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import { VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_RING_INDIRECT_DESC } from './device.js';
import { DESCRIPTOR_SIZE, DescriptorChain, VirtqueueError, readDescriptorChain } from './descriptor-chain.js';

export { DescriptorChain, VirtqueueError } from './descriptor-chain.js';
export type { Descriptor } from './descriptor-chain.js';

/** The ring features Virtqueue implements: a device may offer both. */
export const RING_FEATURES = VIRTIO_F_RING_INDIRECT_DESC | VIRTIO_F_RING_EVENT_IDX;

/** Split virtqueues have a power-of-two size of at most 32768 (spec 2.7). */
export const MAX_QUEUE_SIZE = 32768;

/** avail.flags bit: the driver does not want interrupts (ignored with EVENT_IDX). */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;

export interface QueueAddresses {
  size: number;
  descTable: number;
  availRing: number;
  usedRing: number;
}

export interface QueueOptions {
  /** VIRTIO_F_RING_EVENT_IDX was negotiated. */
  eventIdx: boolean;
  /** VIRTIO_F_RING_INDIRECT_DESC was negotiated. */
  indirect: boolean;
  /** How `--trace virtio` names the queue (e.g. "vsock queue 1"). */
  traceLabel?: string;
}

export class Virtqueue {
  readonly size: number;
  private readonly memory: GuestMemory;
  private readonly options: QueueOptions;
  private readonly traceLabel: string;
  private readonly descTable: DataView;
  private readonly availFlags: Uint16Array;
  private readonly availIdx: Uint16Array;
  private readonly availRing: Uint16Array;
  private readonly usedEvent: Uint16Array;
  private readonly usedIdx: Uint16Array;
  private readonly usedRing: Uint32Array;
  private readonly availEvent: Uint16Array;

  /** Free-running index of the next avail entry to pop. */
  private nextAvail = 0;
  /** Free-running index of the next used entry to fill. */
  private nextUsed = 0;
  /** `nextUsed` the last time needsInterrupt() ran (EVENT_IDX compares against it). */
  private lastCheckedUsed = 0;

  /** Throws VirtqueueError when the size or an area is invalid (the driver's queue setup is wrong). */
  constructor(memory: GuestMemory, addresses: QueueAddresses, options: QueueOptions) {
    const { size, descTable, availRing, usedRing } = addresses;
    if (!Number.isInteger(size) || size < 1 || size > MAX_QUEUE_SIZE || (size & (size - 1)) !== 0) {
      throw new VirtqueueError(`queue size ${size} is not a power of two between 1 and ${MAX_QUEUE_SIZE}`);
    }
    this.size = size;
    this.memory = memory;
    this.options = { eventIdx: options.eventIdx, indirect: options.indirect };
    this.traceLabel = options.traceLabel ?? 'queue';

    const desc = area(memory, 'descriptor table', descTable, DESCRIPTOR_SIZE * size, 16);
    this.descTable = new DataView(desc.buffer, desc.byteOffset, desc.byteLength);
    const avail = area(memory, 'available ring', availRing, 6 + 2 * size, 2);
    this.availFlags = u16(avail, 0, 1);
    this.availIdx = u16(avail, 2, 1);
    this.availRing = u16(avail, 4, size);
    this.usedEvent = u16(avail, 4 + 2 * size, 1);
    const used = area(memory, 'used ring', usedRing, 6 + 8 * size, 4);
    this.usedIdx = u16(used, 2, 1);
    this.usedRing = new Uint32Array(used.buffer, used.byteOffset + 4, 2 * size);
    this.availEvent = u16(used, 4 + 8 * size, 1);
  }

  /** Next available chain, or null when the driver has offered nothing new. Throws VirtqueueError for a malformed chain (it is still consumed). */
  pop(): DescriptorChain | null {
    if (this.pending() === 0) {
      if (!this.options.eventIdx) return null;
      // Ask to be notified when the driver adds the next buffer, then look
      // again: it may have added one before it could see our request.
      Atomics.store(this.availEvent, 0, this.nextAvail);
      if (this.pending() === 0) return null;
    }
    const head = this.availRing[this.nextAvail & (this.size - 1)]!;
    this.nextAvail = (this.nextAvail + 1) & 0xffff;
    const chain = readDescriptorChain(this.memory, this.descTable, this.size, head, this.options.indirect);
    if (trace.virtio) {
      trace.line('virtio', `${this.traceLabel} avail: chain ${head}, ${chain.readableLength} bytes to read, ${chain.writableLength} to write`);
    }
    return chain;
  }

  /** Returns a chain the device will not use yet to the front (e.g. no data to put in an rx buffer). */
  undoPop(): void {
    this.nextAvail = (this.nextAvail - 1) & 0xffff;
  }

  /** Puts a chain in the used ring with the number of bytes the device wrote into it. */
  pushUsed(chain: DescriptorChain, bytesWritten: number): void {
    if (!Number.isInteger(bytesWritten) || bytesWritten < 0 || bytesWritten > chain.writableLength) {
      throw new RangeError(
        `pushUsed: ${bytesWritten} bytes written does not fit chain ${chain.head} (${chain.writableLength} writable)`);
    }
    const slot = (this.nextUsed & (this.size - 1)) * 2;
    this.usedRing[slot] = chain.head;
    this.usedRing[slot + 1] = bytesWritten;
    this.nextUsed = (this.nextUsed + 1) & 0xffff;
    // Publish the entry only after it is written (Atomics.store orders both).
    Atomics.store(this.usedIdx, 0, this.nextUsed);
    if (trace.virtio) trace.line('virtio', `${this.traceLabel} used: chain ${chain.head}, ${bytesWritten} bytes written`);
  }

  /** After pushUsed calls: whether the driver wants an interrupt now (EVENT_IDX used_event / VIRTQ_AVAIL_F_NO_INTERRUPT). */
  needsInterrupt(): boolean {
    const previous = this.lastCheckedUsed;
    const current = this.nextUsed;
    this.lastCheckedUsed = current;
    if (current === previous) return false;
    if (this.options.eventIdx) {
      // Spec 2.7.10: interrupt when used idx went past used_event since the last check
      // (the kernel's vring_need_event(), in 16-bit arithmetic).
      const event = Atomics.load(this.usedEvent, 0);
      return ((current - event - 1) & 0xffff) < ((current - previous) & 0xffff);
    }
    return (Atomics.load(this.availFlags, 0) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
  }

  /** Whether the driver has chains the device has not popped yet. */
  hasAvailable(): boolean {
    return ((Atomics.load(this.availIdx, 0) - this.nextAvail) & 0xffff) !== 0;
  }

  /** How many chains the driver offered that we have not popped; a driver cannot be more than a whole ring ahead. */
  private pending(): number {
    const availIdx = Atomics.load(this.availIdx, 0);
    const count = (availIdx - this.nextAvail) & 0xffff;
    if (count > this.size) {
      throw new VirtqueueError(
        `available ring idx ${availIdx} is ${count} entries ahead of the device (${this.nextAvail}), more than the queue size ${this.size}`);
    }
    return count;
  }
}

/** A live view of a ring area, after checking it lies in guest memory and is aligned as spec 2.7 requires. */
function area(memory: GuestMemory, what: string, address: number, length: number, alignment: number): Uint8Array {
  if (!Number.isSafeInteger(address)) {
    throw new VirtqueueError(`${what} address ${address} is out of range`);
  }
  if (address % alignment !== 0) {
    throw new VirtqueueError(`${what} address 0x${address.toString(16)} is not ${alignment}-byte aligned`);
  }
  if (!memory.contains(address, length)) {
    throw new VirtqueueError(`${what} [0x${address.toString(16)}, +${length}) is outside guest memory`);
  }
  const bytes = memory.slice(address, length);
  if (bytes.byteOffset % alignment !== 0) {
    // Host-side layout problem (guest RAM must be backed at aligned offsets), not the guest's.
    throw new Error(`guest memory backing is not ${alignment}-byte aligned at ${what}`);
  }
  return bytes;
}

function u16(bytes: Uint8Array, offset: number, count: number): Uint16Array {
  return new Uint16Array(bytes.buffer, bytes.byteOffset + offset, count);
}
