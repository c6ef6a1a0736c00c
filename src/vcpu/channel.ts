// The memory a vCPU worker and the main thread share, and the two doorbells
// they ring each other with. One SharedArrayBuffer per vCPU:
//
//   [ control words (Int32) | mailbox data (4 KiB) | write ring (entries) ]
//
// Doorbells are counters: the ringing side adds 1 and calls Atomics.notify;
// the waiting side remembers the value, checks for work, then waits only if
// the counter still has the remembered value. So a ring that arrives between
// "check" and "wait" is never lost, and many rings while the other side is
// busy cost one wake-up (the writes are handled in one batch).
//
//   MAIN_DOORBELL   worker -> main: a write was posted, a read is waiting
//   WORKER_DOORBELL main -> worker: a read was answered, ring space was
//                   freed, or stop was requested

/** Indexes into the control Int32Array. */
export const Ctl = {
  MAIN_DOORBELL: 0,
  WORKER_DOORBELL: 1,
  /** Set to 1 by the main thread to stop the worker. */
  STOP: 2,
  /** The worker's kernel thread id (for tgkill), 0 until it has started. */
  THREAD_ID: 3,
  /** Write ring: next slot the worker fills / next slot the main thread reads (both only grow). */
  RING_HEAD: 4,
  RING_TAIL: 5,
  /** Mailbox (one pending read at a time). */
  MAILBOX_STATE: 6,
  MAILBOX_SPACE: 7,
  MAILBOX_SIZE: 8,
  MAILBOX_COUNT: 9,
  MAILBOX_ADDRESS_LOW: 10,
  MAILBOX_ADDRESS_HIGH: 11,
} as const;
const CONTROL_WORDS = 16;

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

/** Ring entry: Int32 [space | size << 8, address low, address high, unused] then 8 data bytes. */
export const RING_ENTRY_SIZE = 24;
export const RING_ENTRY_WORDS = RING_ENTRY_SIZE / 4;
export const RING_ENTRY_DATA_OFFSET = 16;
export const DEFAULT_RING_ENTRIES = 1024;

/** Typed views over one vCPU's shared buffer; both threads build the same views. */
export class VcpuChannel {
  readonly control: Int32Array;
  readonly mailboxData: Uint8Array;
  readonly ringWords: Int32Array;
  readonly ringBytes: Uint8Array;
  readonly ringEntries: number;

  constructor(readonly buffer: SharedArrayBuffer) {
    const controlBytes = CONTROL_WORDS * 4;
    const ringStart = controlBytes + MAILBOX_DATA_SIZE;
    this.control = new Int32Array(buffer, 0, CONTROL_WORDS);
    this.mailboxData = new Uint8Array(buffer, controlBytes, MAILBOX_DATA_SIZE);
    this.ringEntries = (buffer.byteLength - ringStart) / RING_ENTRY_SIZE;
    this.ringWords = new Int32Array(buffer, ringStart, this.ringEntries * RING_ENTRY_WORDS);
    this.ringBytes = new Uint8Array(buffer, ringStart, this.ringEntries * RING_ENTRY_SIZE);
  }

  /** `ringEntries` must be a power of two (slots are picked with a mask). */
  static create(ringEntries = DEFAULT_RING_ENTRIES): VcpuChannel {
    if (!Number.isInteger(Math.log2(ringEntries))) {
      throw new RangeError(`write ring size ${ringEntries} must be a power of two`);
    }
    const size = CONTROL_WORDS * 4 + MAILBOX_DATA_SIZE + ringEntries * RING_ENTRY_SIZE;
    return new VcpuChannel(new SharedArrayBuffer(size));
  }

  ringMain(): void {
    Atomics.add(this.control, Ctl.MAIN_DOORBELL, 1);
    Atomics.notify(this.control, Ctl.MAIN_DOORBELL);
  }

  ringWorker(): void {
    Atomics.add(this.control, Ctl.WORKER_DOORBELL, 1);
    Atomics.notify(this.control, Ctl.WORKER_DOORBELL);
  }

  get stopRequested(): boolean {
    return Atomics.load(this.control, Ctl.STOP) !== 0;
  }
}
