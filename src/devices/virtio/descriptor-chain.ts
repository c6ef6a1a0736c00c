// A descriptor chain: one buffer the driver offered, as a list of guest
// memory segments. Virtio 1.x spec 2.7.5 (descriptor table) and 2.7.5.3
// (indirect descriptors).
//
// Everything here comes from the guest, so it is all checked while walking:
// indices stay inside their table, the walk is bounded (no loops), every
// segment lies inside guest memory, device-writable segments come after the
// readable ones, and an indirect table holds no indirect descriptor. A chain
// that breaks a rule raises VirtqueueError (the guest's fault, never ours).
import type { GuestMemory } from '../../memory/guest-memory.js';

/** The driver broke a ring or chain rule: fail the request or the device, never the VMM. */
export class VirtqueueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VirtqueueError';
  }
}

/** One segment of a chain, already checked to lie inside guest memory. */
export interface Descriptor {
  address: number;
  length: number;
  writable: boolean;
}

// struct virtq_desc: le64 addr, le32 len, le16 flags, le16 next.
export const DESCRIPTOR_SIZE = 16;
export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;

/**
 * The spec sets no size limit on an indirect table; we do, to bound the work
 * one chain can cost. 1024 is far above what Linux sends (virtio-blk: SEG_MAX
 * + 2, virtio-vsock and console: 1 or 2).
 */
export const MAX_INDIRECT_DESCRIPTORS = 1024;

/** The used ring reports written bytes as le32, so a chain's parts must fit in it. */
const MAX_CHAIN_BYTES = 0xffff_ffff;

export class DescriptorChain {
  readonly readableLength: number;
  readonly writableLength: number;

  constructor(
    private readonly memory: GuestMemory,
    /** Head descriptor index, for pushUsed. */
    readonly head: number,
    /** Device-readable part, in order. */
    readonly readable: readonly Descriptor[],
    /** Device-writable part, in order (all after the readable ones, spec 2.7.4.2). */
    readonly writable: readonly Descriptor[],
  ) {
    this.readableLength = totalLength(readable);
    this.writableLength = totalLength(writable);
  }

  /** Copies readable bytes starting at logical `offset` into `target`; returns bytes copied. */
  read(offset: number, target: Uint8Array): number {
    let copied = 0;
    for (const [address, length] of this.segments(this.readable, offset, target.byteLength)) {
      target.set(this.memory.slice(address, length), copied);
      copied += length;
    }
    return copied;
  }

  /** Copies `source` into the writable part starting at logical `offset`; returns bytes copied. */
  write(offset: number, source: Uint8Array): number {
    let copied = 0;
    for (const [address, length] of this.segments(this.writable, offset, source.byteLength)) {
      this.memory.write(address, source.subarray(copied, copied + length));
      copied += length;
    }
    return copied;
  }

  /** All readable bytes, copied into a new array. */
  readAll(): Uint8Array {
    const data = new Uint8Array(this.readableLength);
    this.read(0, data);
    return data;
  }

  /**
   * Live views (no copy) of the readable part from logical `offset` on, e.g.
   * for `writev` straight from guest memory. The guest may change them until
   * the chain is in the used ring: copy what must not change under you.
   */
  readableViews(offset = 0, length = Infinity): Uint8Array[] {
    return this.segments(this.readable, offset, length).map(([a, n]) => this.memory.slice(a, n));
  }

  /** Live views of the writable part from logical `offset` on (see readableViews). */
  writableViews(offset = 0, length = Infinity): Uint8Array[] {
    return this.segments(this.writable, offset, length).map(([a, n]) => this.memory.slice(a, n));
  }

  /** The [address, length] pieces covering logical bytes [offset, offset + length) of `part`. */
  private segments(part: readonly Descriptor[], offset: number, length: number): [number, number][] {
    const pieces: [number, number][] = [];
    let skip = Math.max(0, offset);
    let left = length;
    for (const d of part) {
      if (left <= 0) break;
      if (skip >= d.length) {
        skip -= d.length;
        continue;
      }
      const n = Math.min(d.length - skip, left);
      pieces.push([d.address + skip, n]);
      left -= n;
      skip = 0;
    }
    return pieces;
  }
}

function totalLength(part: readonly Descriptor[]): number {
  return part.reduce((sum, d) => sum + d.length, 0);
}

/**
 * Walks the chain starting at `head` in the queue's descriptor table.
 * `table` is a view of the whole table (`queueSize` entries).
 */
export function readDescriptorChain(
  memory: GuestMemory,
  table: DataView,
  queueSize: number,
  head: number,
  indirectAllowed: boolean,
): DescriptorChain {
  if (head >= queueSize) {
    throw new VirtqueueError(`head descriptor ${head} is outside the descriptor table (queue size ${queueSize})`);
  }
  const flags = table.getUint16(head * DESCRIPTOR_SIZE + 12, true);
  if ((flags & VIRTQ_DESC_F_INDIRECT) === 0) {
    return walk(memory, head, table, queueSize, head, false);
  }
  // Spec 2.7.5.3.1: the descriptor pointing at an indirect table must not
  // also chain on (NEXT); we accept it only as the whole chain, as Linux sends it.
  if (!indirectAllowed) {
    throw new VirtqueueError(`descriptor ${head} is indirect but VIRTIO_F_RING_INDIRECT_DESC was not negotiated`);
  }
  if (flags & VIRTQ_DESC_F_NEXT) {
    throw new VirtqueueError(`indirect descriptor ${head} also has the NEXT flag`);
  }
  const address = descriptorAddress(table, head);
  const length = table.getUint32(head * DESCRIPTOR_SIZE + 8, true);
  if (length === 0 || length % DESCRIPTOR_SIZE !== 0) {
    throw new VirtqueueError(`indirect table length ${length} is not a non-zero multiple of ${DESCRIPTOR_SIZE}`);
  }
  const entries = length / DESCRIPTOR_SIZE;
  if (entries > MAX_INDIRECT_DESCRIPTORS) {
    throw new VirtqueueError(`indirect table has ${entries} descriptors (at most ${MAX_INDIRECT_DESCRIPTORS})`);
  }
  if (!memory.contains(address, length)) {
    throw new VirtqueueError(`indirect table [0x${address.toString(16)}, +${length}) is outside guest memory`);
  }
  const bytes = memory.slice(address, length);
  const indirectTable = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return walk(memory, head, indirectTable, entries, 0, true);
}

/** Follows NEXT links from `first`; at most `tableSize` steps, so a loop cannot run forever. */
function walk(
  memory: GuestMemory,
  head: number,
  table: DataView,
  tableSize: number,
  first: number,
  inIndirectTable: boolean,
): DescriptorChain {
  const readable: Descriptor[] = [];
  const writable: Descriptor[] = [];
  let index = first;
  for (let steps = 1; ; steps++) {
    const entry = index * DESCRIPTOR_SIZE;
    const address = descriptorAddress(table, index);
    const length = table.getUint32(entry + 8, true);
    const flags = table.getUint16(entry + 12, true);
    if (flags & VIRTQ_DESC_F_INDIRECT) {
      throw new VirtqueueError(inIndirectTable
        ? `indirect descriptor inside an indirect table (chain head ${head})`
        : `indirect descriptor ${index} in the middle of a chain (head ${head})`);
    }
    if (!memory.contains(address, length)) {
      throw new VirtqueueError(
        `descriptor ${index} of chain ${head} points outside guest memory: [0x${address.toString(16)}, +${length})`);
    }
    if (flags & VIRTQ_DESC_F_WRITE) {
      writable.push({ address, length, writable: true });
    } else if (writable.length > 0) {
      throw new VirtqueueError(`chain ${head} has a device-readable descriptor after a device-writable one`);
    } else {
      readable.push({ address, length, writable: false });
    }
    if ((flags & VIRTQ_DESC_F_NEXT) === 0) break;
    index = table.getUint16(entry + 14, true);
    if (index >= tableSize) {
      throw new VirtqueueError(`chain ${head} links to descriptor ${index}, outside its table of ${tableSize}`);
    }
    if (steps >= tableSize) {
      throw new VirtqueueError(`chain ${head} is longer than its table of ${tableSize} descriptors (a loop?)`);
    }
  }
  const chain = new DescriptorChain(memory, head, readable, writable);
  if (chain.readableLength > MAX_CHAIN_BYTES || chain.writableLength > MAX_CHAIN_BYTES) {
    throw new VirtqueueError(`chain ${head} is longer than 4 GiB`);
  }
  return chain;
}

/** The le64 address of descriptor `index`, refused when it is beyond what a JS number holds exactly. */
function descriptorAddress(table: DataView, index: number): number {
  const low = table.getUint32(index * DESCRIPTOR_SIZE, true);
  const high = table.getUint32(index * DESCRIPTOR_SIZE + 4, true);
  if (high > 0x1f_ffff) {
    throw new VirtqueueError(`descriptor ${index} address 0x${high.toString(16)}${low.toString(16).padStart(8, '0')} is out of range`);
  }
  return high * 2 ** 32 + low;
}
