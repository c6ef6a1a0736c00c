// Guest writes (OUT, MMIO stores) travel from the vCPU workers to the main
// thread through ONE ring in shared memory for all vCPUs of a VM. A write
// needs no answer, so the worker posts it and re-enters the guest at once;
// the main thread applies the writes in ring order, in batches.
//
// One ring, not one per vCPU: ring order is the order in which the writes
// were posted, across vCPUs, and that is the order the devices must see them
// in (vcpu-set.ts explains why). Several workers post at once, so a slot is
// taken in two steps:
//   claim    compare-and-swap RING_HEAD from h to h + 1: slot h is ours
//            (only when the ring has room, so a claim never waits);
//   publish  fill the slot, then store its stamp h + 1.
// The main thread reads slot t only once its stamp is t + 1, and stops at the
// first slot that is claimed but not yet published: its worker is a few
// instructions from publishing it and ringing the main doorbell. Stamps
// cannot be confused with a previous lap: the old stamp of slot t is
// t + 1 - ringEntries.
//
// Why a ring and not postMessage: a postMessage per write costs a structured
// clone and a task on the main thread for every OUT; the ring costs a few
// Atomics operations and a wake-up only when the main thread was idle.
// Measured on the development machine (a worker posting 20,000 one-byte
// writes between simulated 8 us exits): ring 1.6 us of worker time per
// write, postMessage 2.2-2.5 us.

import {
  RING_ENTRY_DATA_OFFSET, RING_ENTRY_WORDS, SharedCtl, SharedChannel, SpaceId, VcpuChannel,
} from './channel.js';

const STAMP = 0;
const HEADER = 1;
const ADDRESS_LOW = 2;
const ADDRESS_HIGH = 3;

/**
 * Worker side: appends one write of vCPU `vcpuId` (its channel tells whether
 * it was asked to stop). Returns false when stop was requested while the
 * ring was full.
 */
export function postWrite(
  shared: SharedChannel, vcpu: VcpuChannel, vcpuId: number, space: SpaceId, address: number, data: Uint8Array,
): boolean {
  const { control, ringEntries } = shared;
  // head and tail are free-running int32 counters; `| 0` keeps their
  // difference right when they wrap around 2^31.
  let head: number;
  for (;;) {
    const seen = Atomics.load(control, SharedCtl.RING_SPACE);
    head = Atomics.load(control, SharedCtl.RING_HEAD);
    if (((head - Atomics.load(control, SharedCtl.RING_TAIL)) | 0) >= ringEntries) {
      // Full: wait until the main thread has consumed something (or asks us to stop).
      if (vcpu.stopRequested) return false;
      Atomics.wait(control, SharedCtl.RING_SPACE, seen);
    } else if (Atomics.compareExchange(control, SharedCtl.RING_HEAD, head, (head + 1) | 0) === head) {
      break;
    }
  }
  // From the claim to the stamp: no waiting, nothing that can throw.
  const slot = head & (ringEntries - 1);
  const word = slot * RING_ENTRY_WORDS;
  const words = shared.ringWords;
  words[word + HEADER] = space | (data.byteLength << 8) | (vcpuId << 16);
  words[word + ADDRESS_LOW] = address >>> 0;
  words[word + ADDRESS_HIGH] = Math.floor(address / 2 ** 32);
  shared.ringBytes.set(data, word * 4 + RING_ENTRY_DATA_OFFSET);
  // A sequentially consistent store: whoever reads the stamp sees the entry.
  Atomics.store(words, word + STAMP, (head + 1) | 0);
  shared.ringMain();
  return true;
}

/** Main side: one write as posted. */
export type ApplyWrite = (vcpuId: number, space: SpaceId, address: number, data: Uint8Array) => void;

/**
 * Main side: applies every published write in ring order, up to the first
 * slot still being filled; returns how many there were.
 */
export function drainWrites(shared: SharedChannel, apply: ApplyWrite): number {
  const { control, ringEntries, ringWords, ringBytes } = shared;
  const start = Atomics.load(control, SharedCtl.RING_TAIL);
  let tail = start;
  try {
    for (;;) {
      const word = (tail & (ringEntries - 1)) * RING_ENTRY_WORDS;
      if (Atomics.load(ringWords, word + STAMP) !== ((tail + 1) | 0)) break;
      const header = ringWords[word + HEADER]!;
      const address = (ringWords[word + ADDRESS_LOW]! >>> 0) + (ringWords[word + ADDRESS_HIGH]! >>> 0) * 2 ** 32;
      const data = word * 4 + RING_ENTRY_DATA_OFFSET;
      tail = (tail + 1) | 0; // consumed even if the device throws
      // A copy: devices may keep what they are given.
      apply(header >>> 16, (header & 0xff) as SpaceId, address, ringBytes.slice(data, data + ((header >>> 8) & 0xff)));
    }
  } finally {
    if (tail !== start) {
      Atomics.store(control, SharedCtl.RING_TAIL, tail);
      shared.ringWriters(); // a worker may be waiting for space
    }
  }
  return (tail - start) | 0;
}

/** Main side: a mark that covers every write claimed so far (published or not). */
export function claimedWritesMark(shared: SharedChannel): number {
  return Atomics.load(shared.control, SharedCtl.RING_HEAD);
}

/** Main side: true once every write claimed before `mark` was taken has been applied. */
export function appliedThrough(shared: SharedChannel, mark: number): boolean {
  return ((Atomics.load(shared.control, SharedCtl.RING_TAIL) - mark) | 0) >= 0;
}
