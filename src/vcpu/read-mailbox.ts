// Guest reads (IN, MMIO loads) need an answer before the vCPU can go on, and
// the answer comes from device state on the main thread. The worker posts
// the read in a one-slot mailbox, rings the main thread and sleeps in
// Atomics.wait; the main thread first applies every write posted before, by
// any vCPU (so the read sees them: vcpu-set.ts), fills the mailbox and rings
// back.

import { Ctl, MAILBOX_DATA_SIZE, Mailbox, SharedChannel, SpaceId, VcpuChannel } from './channel.js';

/**
 * Worker side: asks the main thread for `count` reads of `size` bytes at
 * `address` and copies the answer into `into` (size * count bytes).
 * Returns false when stop was requested instead.
 */
export function requestRead(
  shared: SharedChannel, channel: VcpuChannel,
  space: SpaceId, address: number, size: number, count: number, into: Uint8Array,
): boolean {
  const { control } = channel;
  control[Ctl.MAILBOX_SPACE] = space;
  control[Ctl.MAILBOX_SIZE] = size;
  control[Ctl.MAILBOX_COUNT] = count;
  control[Ctl.MAILBOX_ADDRESS_LOW] = address >>> 0;
  control[Ctl.MAILBOX_ADDRESS_HIGH] = Math.floor(address / 2 ** 32);
  Atomics.store(control, Ctl.MAILBOX_STATE, Mailbox.REQUEST);
  shared.ringMain();
  for (;;) {
    const seen = Atomics.load(control, Ctl.WORKER_DOORBELL);
    if (Atomics.load(control, Ctl.MAILBOX_STATE) === Mailbox.ANSWERED) break;
    if (channel.stopRequested) return false;
    Atomics.wait(control, Ctl.WORKER_DOORBELL, seen);
  }
  into.set(channel.mailboxData.subarray(0, size * count));
  Atomics.store(control, Ctl.MAILBOX_STATE, Mailbox.IDLE);
  return true;
}

/** A read the worker is waiting for. */
export interface PendingRead {
  space: SpaceId;
  address: number;
  /** Bytes per access. */
  size: number;
  /** Number of accesses (rep ins). */
  count: number;
}

/** Main side: the pending read, if any. */
export function pendingRead(channel: VcpuChannel): PendingRead | undefined {
  const { control } = channel;
  if (Atomics.load(control, Ctl.MAILBOX_STATE) !== Mailbox.REQUEST) return undefined;
  const size = control[Ctl.MAILBOX_SIZE]!;
  const count = control[Ctl.MAILBOX_COUNT]!;
  if (size * count > MAILBOX_DATA_SIZE) throw new RangeError(`read of ${count} x ${size} bytes does not fit the mailbox`);
  return {
    space: control[Ctl.MAILBOX_SPACE] as SpaceId,
    address: (control[Ctl.MAILBOX_ADDRESS_LOW]! >>> 0) + (control[Ctl.MAILBOX_ADDRESS_HIGH]! >>> 0) * 2 ** 32,
    size,
    count,
  };
}

/** Main side: answers the pending read; `fill(data)` is called once per access to fill its `size` bytes. */
export function answerRead(channel: VcpuChannel, read: PendingRead, fill: (data: Uint8Array) => void): void {
  for (let i = 0; i < read.count; i++) {
    const data = new Uint8Array(read.size);
    fill(data);
    channel.mailboxData.set(data, i * read.size);
  }
  Atomics.store(channel.control, Ctl.MAILBOX_STATE, Mailbox.ANSWERED);
  channel.ringWorker();
}
