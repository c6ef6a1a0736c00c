// The main-thread side of one vCPU: starts its worker (vcpu-worker.ts),
// applies the guest's port and MMIO writes to the buses, answers its reads,
// reports how it ended, and stops it from any state.
//
// Device state stays on the main thread, so devices need no locks; the
// worker only runs KVM_RUN and shuttles accesses through shared memory
// (channel.ts). Waiting uses Atomics.waitAsync, so the event loop stays free.

import { Worker } from 'node:worker_threads';
import { Bus } from '../bus/bus.js';
import { VcpuFd } from '../kvm/vcpu-fd.js';
import { Ctl, DEFAULT_RING_ENTRIES, Space, SpaceId, VcpuChannel } from './channel.js';
import { installKickHandler, kickThread } from './kick.js';
import { answerRead, pendingRead } from './read-mailbox.js';
import { VcpuExit, errorExit } from './vcpu-exit.js';
import type { VcpuWorkerData, VcpuWorkerMessage } from './vcpu-worker.js';
import { siblingModule, startModuleWorker } from './worker-loader.js';
import { drainWrites } from './write-ring.js';

export interface VcpuBuses {
  pio: Bus;
  mmio: Bus;
}

/** A port whose reads the worker answers itself from a shared byte (no round trip). */
export interface SharedPortValue {
  port: number;
  sharedByteIndex: number;
}

export interface VcpuThreadOptions {
  /** The vCPU, set up (registers etc.) and not running elsewhere. */
  vcpu: VcpuFd;
  buses: VcpuBuses;
  /** Called once if the guest stops on its own (halt, triple fault, reset, ...) or KVM fails. */
  onExit?: (exit: VcpuExit) => void;
  /**
   * Bytes devices keep current for worker-answered port reads, e.g. the
   * UART's line status register. Reads of these ports may not see writes
   * still queued for the main thread, so use them only for values where
   * that does not matter. One buffer can serve all vCPUs.
   */
  sharedBytes?: Uint8Array;
  sharedPortValues?: readonly SharedPortValue[];
  /** Called for accesses no device claims (reads then return all ones). */
  onUnclaimedAccess?: (access: { space: 'pio' | 'mmio'; address: number; size: number; write: boolean }) => void;
  /** Entries in the write ring (a power of two). */
  ringEntries?: number;
}

// Node 20's TypeScript lib (ES2023) does not declare Atomics.waitAsync yet.
const waitAsync = (Atomics as unknown as {
  waitAsync(array: Int32Array, index: number, value: number): { async: boolean; value: Promise<string> | string };
}).waitAsync;

export class VcpuThread {
  private readonly channel: VcpuChannel;
  private worker: Worker | undefined;
  private workerGone = true;
  private exitReport: VcpuExit | undefined;
  private finishedPromise: Promise<VcpuExit | undefined> = Promise.resolve(undefined);

  constructor(private readonly options: VcpuThreadOptions) {
    this.channel = VcpuChannel.create(options.ringEntries ?? DEFAULT_RING_ENTRIES);
    const shared = options.sharedBytes;
    if (options.sharedPortValues?.length && !(shared?.buffer instanceof SharedArrayBuffer)) {
      throw new Error('sharedPortValues need sharedBytes backed by a SharedArrayBuffer');
    }
  }

  get vcpuId(): number {
    return this.options.vcpu.id;
  }

  /** True from start() until the worker has ended. */
  get running(): boolean {
    return !this.workerGone;
  }

  /** The worker's kernel thread id (as in /proc/self/task), once it has started. */
  get kernelThreadId(): number | undefined {
    return Atomics.load(this.channel.control, Ctl.THREAD_ID) || undefined;
  }

  /** True while the worker waits for the main thread to answer a read (diagnostics, tests). */
  get waitingForRead(): boolean {
    return !this.workerGone && pendingRead(this.channel) !== undefined;
  }

  /** Resolves when the worker has ended: with its exit report, or undefined if it was stopped. */
  get finished(): Promise<VcpuExit | undefined> {
    return this.finishedPromise;
  }

  start(): void {
    if (this.worker) throw new Error(`vCPU ${this.vcpuId} was already started`);
    installKickHandler();
    const { vcpu, sharedBytes, sharedPortValues } = this.options;
    vcpu.run.immediateExit = false;
    const workerData: VcpuWorkerData = {
      vcpuId: vcpu.id,
      vcpuFd: vcpu.fd,
      mmapSize: vcpu.mmapSize,
      channel: this.channel.buffer,
      sharedBytes: sharedBytes?.buffer as SharedArrayBuffer | undefined,
      sharedPortValues: (sharedPortValues ?? []).map((p) => ({
        port: p.port, sharedByteIndex: (sharedBytes?.byteOffset ?? 0) + p.sharedByteIndex,
      })),
    };
    const worker = startModuleWorker(siblingModule(import.meta.url, 'vcpu-worker'), {
      workerData, name: `vcpu${vcpu.id}`,
    });
    this.worker = worker;
    this.workerGone = false;
    this.finishedPromise = new Promise((resolve) => {
      worker.on('message', (message: VcpuWorkerMessage) => this.report(message.exit));
      worker.on('error', (error) => this.report(errorExit(this.vcpuId, `vCPU ${this.vcpuId} thread crashed: ${error.message}`)));
      worker.on('exit', () => {
        this.workerGone = true;
        this.channel.ringMain(); // lets serve() notice and return
        resolve(this.exitReport);
      });
    });
    void this.serve();
  }

  /**
   * Stops the vCPU whatever it is doing (running guest code, halted inside
   * KVM_RUN, waiting for a read) and resolves once its thread has ended.
   */
  async stop(): Promise<void> {
    if (!this.worker) return;
    if (!this.workerGone) {
      Atomics.store(this.channel.control, Ctl.STOP, 1);
      this.options.vcpu.run.immediateExit = true;
      const threadId = Atomics.load(this.channel.control, Ctl.THREAD_ID);
      if (threadId !== 0) kickThread(threadId);
      this.channel.ringWorker();
    }
    await this.finishedPromise;
  }

  /** Main-thread loop: sleep until the worker rings, then do what it asked. */
  private async serve(): Promise<void> {
    const control = this.channel.control;
    while (!this.workerGone) {
      const seen = Atomics.load(control, Ctl.MAIN_DOORBELL);
      this.service();
      const wait = waitAsync(control, Ctl.MAIN_DOORBELL, seen);
      if (wait.async) await wait.value;
    }
  }

  /** Applies posted writes, then answers the pending read (which must see those writes). */
  private service(): void {
    try {
      // Look for a read BEFORE draining: the worker posts its writes, then
      // the read, then waits. So once a read is seen, every write that
      // precedes it is already in the ring and the drain below applies it.
      // (Draining first raced: a write and a read posted between the drain
      // and this check made the read miss the write, e.g. Linux selecting a
      // virtqueue and reading QueueReady of the previously selected one.)
      const read = pendingRead(this.channel);
      drainWrites(this.channel, (space, address, data) => this.write(space, address, data));
      // After stop() nobody waits for the answer: do not touch the device.
      if (read && !this.channel.stopRequested) {
        answerRead(this.channel, read, (data) => this.read(read.space, read.address, data));
      }
    } catch (error) {
      this.report(errorExit(this.vcpuId, `device error: ${(error as Error).message}`));
      void this.stop();
    }
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

  private report(exit: VcpuExit): void {
    if (this.exitReport) return; // the first cause is the one that matters
    // Writes the guest made before it died (a panic message...) come first.
    drainWrites(this.channel, (space, address, data) => {
      try { this.write(space, address, data); } catch { /* already failing */ }
    });
    this.exitReport = exit;
    this.options.onExit?.(exit);
  }
}
