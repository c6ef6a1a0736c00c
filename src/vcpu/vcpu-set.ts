// The vCPUs of one VM as the devices see them: one write ring for all of
// them, and one main-thread loop that applies their writes and answers their
// reads. It also starts them all (or none), in the workers started for them
// ahead of time if there are, and stops them.
//
// THE ORDERING RULE. Guest code assumes what a PC gives it: a port or MMIO
// write is complete, the device has seen it, once the instruction retired.
// Our writes are posted instead (the vCPU runs on before the main thread has
// applied them), so tsvmm must make that invisible. A later access that
// causally follows an earlier write must see it, and causality between
// vCPUs runs through guest RAM (a spinlock, a flag), which tsvmm cannot see.
// Hence, for ALL vCPUs together:
//
//   1. Devices see writes in the order they were posted. One ring for the
//      whole VM (write-ring.ts) gives that order: a write that causally
//      precedes another was claimed first. Per-vCPU rings broke it: with two
//      vCPUs taking turns at the UART under its lock, the main thread drained
//      one vCPU's ring, then the other's, and the 8250 FIFO loads came out
//      interleaved (scrambled boot logs).
//   2. Before a read is answered, every write claimed before the read was
//      seen is applied: the writes of the reading vCPU AND of every other
//      vCPU (service() below). A write still being published (claimed, not
//      stamped) holds the answer back until its worker rings.
//   3. Before anything else that lets a device act on the guest's behalf,
//      above all an ioeventfd kick, which reaches the main thread without
//      going through this ring, the kick path calls drainPostedWrites()
//      (after consuming the eventfd, so that every kick folded into the
//      counter is covered). Otherwise QueueReady or DriverOK, written just
//      before the kick, may still be in the ring when the device looks.
//
// Global order costs the hot path nothing extra but a compare-and-swap on
// the ring head: a boot log still goes through the UART at one posted write
// per byte, with no wait. The one exception to the rule is deliberate:
// worker-answered port reads (VcpuThreadOptions.sharedPortValues) do not
// wait for posted writes.

import type { Bus } from '../bus/bus.js';
import { DEFAULT_RING_ENTRIES, SharedChannel, SharedCtl, Space, SpaceId } from './channel.js';
import type { PrestartedVcpuWorkers } from './prestarted-workers.js';
import { PendingRead, answerRead, pendingRead } from './read-mailbox.js';
import { VcpuThread, VcpuThreadOptions } from './vcpu-thread.js';
import { appliedThrough, claimedWritesMark, drainWrites } from './write-ring.js';

export interface VcpuBuses {
  pio: Bus;
  mmio: Bus;
}

export interface VcpuSetOptions {
  /** Where the vCPUs' port and MMIO accesses go. */
  buses: VcpuBuses;
  /** Called for accesses no device claims (reads then return all ones). */
  onUnclaimedAccess?: (access: { space: 'pio' | 'mmio'; address: number; size: number; write: boolean }) => void;
  /** Entries in the write ring (a power of two). */
  ringEntries?: number;
}

// Node 20's TypeScript lib (ES2023) does not declare Atomics.waitAsync yet.
const waitAsync = (Atomics as unknown as {
  waitAsync(array: Int32Array, index: number, value: number): { async: boolean; value: Promise<string> | string };
}).waitAsync;

export class VcpuSet {
  /** The write ring and main doorbell every vCPU of the set shares. */
  readonly shared: SharedChannel;
  private readonly members = new Map<number, VcpuThread>();
  private serving = false;
  private draining = false;

  constructor(private readonly options: VcpuSetOptions) {
    this.shared = SharedChannel.create(options.ringEntries ?? DEFAULT_RING_ENTRIES);
  }

  /** Creates the thread for one vCPU of the set (not started yet). */
  add(options: VcpuThreadOptions): VcpuThread {
    const id = options.vcpu.id;
    if (this.members.has(id)) throw new Error(`vCPU ${id} is already in the set`);
    const thread = new VcpuThread(this, options);
    this.members.set(id, thread);
    return thread;
  }

  /** The threads, in the order they were added. */
  get threads(): readonly VcpuThread[] {
    return [...this.members.values()];
  }

  /**
   * Starts every vCPU, each in the worker `prestarted` holds for it, if any
   * (else in a new one). If one cannot start, the ones already started are
   * stopped (their threads have ended) before the error is rethrown.
   */
  async startAll(prestarted?: PrestartedVcpuWorkers): Promise<void> {
    const started: VcpuThread[] = [];
    try {
      for (const thread of this.members.values()) {
        thread.start(prestarted?.take(thread.vcpuId));
        started.push(thread);
      }
    } catch (error) {
      await Promise.all(started.map((thread) => thread.stop()));
      throw error;
    }
  }

  /** Stops every vCPU; resolves once all their threads have ended. */
  async stopAll(): Promise<void> {
    await Promise.all(this.threads.map((thread) => thread.stop()));
  }

  /**
   * Applies every write any vCPU posted before this call, synchronously
   * (rule 3 above: call it before a device handles an ioeventfd kick). A
   * write still being published is waited for: its worker is a few
   * instructions from finishing it.
   */
  drainPostedWrites(): void {
    const control = this.shared.control;
    const mark = claimedWritesMark(this.shared);
    for (;;) {
      const seen = Atomics.load(control, SharedCtl.MAIN_DOORBELL);
      this.applyPublishedWrites();
      // Called from inside a drain (a device's callback): that drain goes on after us.
      if (this.draining || appliedThrough(this.shared, mark)) return;
      Atomics.wait(control, SharedCtl.MAIN_DOORBELL, seen);
    }
  }

  /** Runs the main-thread loop while any vCPU of the set runs (VcpuThread.start() calls it). */
  serve(): void {
    if (this.serving) return;
    this.serving = true;
    void this.serveWhileRunning();
  }

  /** Sleep until a worker rings, then do what it asked; once more after the last worker has ended. */
  private async serveWhileRunning(): Promise<void> {
    const control = this.shared.control;
    for (;;) {
      const seen = Atomics.load(control, SharedCtl.MAIN_DOORBELL);
      this.service();
      if (!this.anyRunning()) break;
      const wait = waitAsync(control, SharedCtl.MAIN_DOORBELL, seen);
      if (wait.async) await wait.value;
    }
    this.serving = false;
  }

  private anyRunning(): boolean {
    for (const thread of this.members.values()) if (thread.running) return true;
    return false;
  }

  /** Applies posted writes, then answers the pending reads (rule 2). */
  private service(): void {
    // Look for reads BEFORE taking the mark: a worker posts its writes, then
    // its read, then waits. So once a read is seen, every write that precedes
    // it (in its vCPU or, through guest RAM, in another) is already claimed,
    // and the mark covers it. (Draining first raced: a write and a read
    // posted between the drain and this check made the read miss the write,
    // e.g. Linux selecting a virtqueue and reading QueueReady of the
    // previously selected one.)
    const reads: { thread: VcpuThread; read: PendingRead }[] = [];
    for (const thread of this.members.values()) {
      // After stop() nobody waits for the answer: do not touch the device.
      if (!thread.running || thread.channel.stopRequested) continue;
      try {
        const read = pendingRead(thread.channel);
        if (read) reads.push({ thread, read });
      } catch (error) {
        thread.fail(`device error: ${(error as Error).message}`);
      }
    }
    const mark = claimedWritesMark(this.shared);
    this.applyPublishedWrites();
    // A write is still being published: its worker rings when it is, and we come back.
    if (!appliedThrough(this.shared, mark)) return;
    for (const { thread, read } of reads) {
      if (thread.channel.stopRequested) continue;
      try {
        answerRead(thread.channel, read, (data) => this.read(read.space, read.address, data));
      } catch (error) {
        thread.fail(`device error: ${(error as Error).message}`);
      }
    }
  }

  /** Applies the published writes; a device error ends the vCPU that made the write, once the batch is done. */
  private applyPublishedWrites(): void {
    if (this.draining) return;
    this.draining = true;
    const failures = new Map<number, string>();
    try {
      drainWrites(this.shared, (vcpuId, space, address, data) => {
        try {
          this.write(space, address, data);
        } catch (error) {
          if (!failures.has(vcpuId)) failures.set(vcpuId, `device error: ${(error as Error).message}`);
        }
      });
    } finally {
      this.draining = false;
    }
    for (const [vcpuId, message] of failures) this.members.get(vcpuId)?.fail(message);
  }

  private write(space: SpaceId, address: number, data: Uint8Array): void {
    const bus = space === Space.PIO ? this.options.buses.pio : this.options.buses.mmio;
    let claimed: boolean;
    try {
      claimed = bus.write(address, data);
    } catch (error) {
      throw new Error(`${bus.name} write at 0x${address.toString(16)}: ${(error as Error).message}`, { cause: error });
    }
    if (!claimed) this.unclaimed(space, address, data.byteLength, true);
  }

  private read(space: SpaceId, address: number, data: Uint8Array): void {
    const bus = space === Space.PIO ? this.options.buses.pio : this.options.buses.mmio;
    let claimed: boolean;
    try {
      claimed = bus.read(address, data);
    } catch (error) {
      throw new Error(`${bus.name} read at 0x${address.toString(16)}: ${(error as Error).message}`, { cause: error });
    }
    if (!claimed) this.unclaimed(space, address, data.byteLength, false);
  }

  private unclaimed(space: SpaceId, address: number, size: number, write: boolean): void {
    this.options.onUnclaimedAccess?.({ space: space === Space.PIO ? 'pio' : 'mmio', address, size, write });
  }
}
