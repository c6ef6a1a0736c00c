// The memory the vCPU workers and the main thread share, and the doorbells
// they ring each other with. Two kinds of SharedArrayBuffer:
//
//   one per VM (SharedChannel), used by every vCPU:
//     [ control words (Int32) | write ring (entries) ]
//   one per vCPU (VcpuChannel):
//     [ control words (Int32) | mailbox data (4 KiB) ]
//
// The write ring is shared so that the main thread applies the writes of all
// vCPUs in the one order they were posted (see vcpu-set.ts for the rule).
//
// Doorbells are counters: the ringing side adds 1 and calls Atomics.notify;
// the waiting side remembers the value, checks for work, then waits only if
// the counter still has the remembered value. So a ring that arrives between
// "check" and "wait" is never lost, and many rings while the other side is
// busy cost one wake-up (the writes are handled in one batch).
//
//   MAIN_DOORBELL (shared)  any worker -> main: a write was posted, a read is waiting
//   RING_SPACE (shared)     main -> workers: ring space was freed, or a stop was requested
//   WORKER_DOORBELL (vCPU)  main -> one worker: its read was answered, or stop was requested

/** Indexes into the per-VM control Int32Array. */
export const SharedCtl = {
  MAIN_DOORBELL: 0,
  RING_SPACE: 1,
  /** Write ring: next slot a worker claims / next slot the main thread reads (both only grow). */
  RING_HEAD: 2,
  RING_TAIL: 3,
} as const;
const SHARED_CONTROL_WORDS = 16;

/** Indexes into a vCPU's control Int32Array. */
export const Ctl = {
  WORKER_DOORBELL: 0,
  /** Set to 1 by the main thread to stop the worker. */
  STOP: 1,
  /** The worker's kernel thread id (for tgkill), 0 until it has started. */
  THREAD_ID: 2,
  /** Mailbox (one pending read at a time). */
  MAILBOX_STATE: 3,
  MAILBOX_SPACE: 4,
  MAILBOX_SIZE: 5,
  MAILBOX_COUNT: 6,
  MAILBOX_ADDRESS_LOW: 7,
  MAILBOX_ADDRESS_HIGH: 8,
} as const;
const VCPU_CONTROL_WORDS = 16;

/** Mailbox states. */
export const Mailbox = {
  IDLE: 0,
  /** The worker posted a read and waits. */
  REQUEST: 1,
  /** The main thread filled the mailbox data. */
  ANSWERED: 2,
} as const;

/** Which bus an access goes to. */
export const Space = { PIO: 0, MMIO: 1 } as const;
export type SpaceId = (typeof Space)[keyof typeof Space];

/** Room for the largest access: a `rep insb` fills at most one page. */
export const MAILBOX_DATA_SIZE = 4096;

/**
 * Ring entry: Int32 [stamp, space | size << 8 | vcpuId << 16, address low,
 * address high] then 8 data bytes. The stamp says the entry is complete
 * (write-ring.ts).
 */
export const RING_ENTRY_SIZE = 24;
export const RING_ENTRY_WORDS = RING_ENTRY_SIZE / 4;
export const RING_ENTRY_DATA_OFFSET = 16;
export const DEFAULT_RING_ENTRIES = 1024;

/** Typed views over the per-VM shared buffer; every thread builds the same views. */
export class SharedChannel {
  readonly control: Int32Array;
  readonly ringWords: Int32Array;
  readonly ringBytes: Uint8Array;
  readonly ringEntries: number;

  constructor(readonly buffer: SharedArrayBuffer) {
    const ringStart = SHARED_CONTROL_WORDS * 4;
    this.control = new Int32Array(buffer, 0, SHARED_CONTROL_WORDS);
    this.ringEntries = (buffer.byteLength - ringStart) / RING_ENTRY_SIZE;
    this.ringWords = new Int32Array(buffer, ringStart, this.ringEntries * RING_ENTRY_WORDS);
    this.ringBytes = new Uint8Array(buffer, ringStart, this.ringEntries * RING_ENTRY_SIZE);
  }

  /** `ringEntries` must be a power of two (slots are picked with a mask). */
  static create(ringEntries = DEFAULT_RING_ENTRIES): SharedChannel {
    if (!Number.isInteger(Math.log2(ringEntries))) {
      throw new RangeError(`write ring size ${ringEntries} must be a power of two`);
    }
    return new SharedChannel(new SharedArrayBuffer(SHARED_CONTROL_WORDS * 4 + ringEntries * RING_ENTRY_SIZE));
  }

  ringMain(): void {
    ring(this.control, SharedCtl.MAIN_DOORBELL);
  }

  /** Wakes every worker waiting for ring space (so that it looks again: for space, or for its stop flag). */
  ringWriters(): void {
    ring(this.control, SharedCtl.RING_SPACE);
  }
}

/** Typed views over one vCPU's shared buffer; both threads build the same views. */
export class VcpuChannel {
  readonly control: Int32Array;
  readonly mailboxData: Uint8Array;

  constructor(readonly buffer: SharedArrayBuffer) {
    this.control = new Int32Array(buffer, 0, VCPU_CONTROL_WORDS);
    this.mailboxData = new Uint8Array(buffer, VCPU_CONTROL_WORDS * 4, MAILBOX_DATA_SIZE);
  }

  static create(): VcpuChannel {
    return new VcpuChannel(new SharedArrayBuffer(VCPU_CONTROL_WORDS * 4 + MAILBOX_DATA_SIZE));
  }

  ringWorker(): void {
    ring(this.control, Ctl.WORKER_DOORBELL);
  }

  get stopRequested(): boolean {
    return Atomics.load(this.control, Ctl.STOP) !== 0;
  }
}

function ring(control: Int32Array, doorbell: number): void {
  Atomics.add(control, doorbell, 1);
  Atomics.notify(control, doorbell);
}
