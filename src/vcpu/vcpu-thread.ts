// The main-thread side of one vCPU: hands its worker (vcpu-worker.ts) the
// vCPU, reports how it ended and when it first ran, and stops it from any
// state.
// Its port and MMIO accesses are served by the VcpuSet it belongs to
// (vcpu-set.ts), which serves every vCPU of the VM in one order.
//
// Device state stays on the main thread, so devices need no locks; the
// worker only runs KVM_RUN and shuttles accesses through shared memory
// (channel.ts).

import { trace } from '../trace.js';
import type { Worker } from 'node:worker_threads';
import type { VcpuFd } from '../kvm/vcpu-fd.js';
import { Ctl, VcpuChannel } from './channel.js';
import { installKickHandler, kickThread } from './kick.js';
import { endWaitingWorker, startVcpuWorker } from './prestarted-workers.js';
import { pendingRead } from './read-mailbox.js';
import { VcpuExit, errorExit } from './vcpu-exit.js';
import type { VcpuSet } from './vcpu-set.js';
import type { VcpuStartMessage, VcpuWorkerMessage } from './vcpu-worker.js';

/** A port whose reads the worker answers itself from a shared byte (no round trip). */
export interface SharedPortValue {
  port: number;
  sharedByteIndex: number;
}

export interface VcpuThreadOptions {
  /** The vCPU, set up (registers etc.) and not running elsewhere. */
  vcpu: VcpuFd;
  /** Called once if the guest stops on its own (halt, triple fault, reset, ...) or KVM fails. */
  onExit?: (exit: VcpuExit) => void;
  /**
   * Called once, when the worker first enters KVM_RUN, with the time it read
   * just before: process.hrtime.bigint(), the same clock in every thread.
   */
  onFirstRun?: (at: bigint) => void;
  /**
   * Bytes devices keep current for worker-answered port reads, e.g. the
   * UART's line status register. Reads of these ports may not see writes
   * still queued for the main thread, so use them only for values where
   * that does not matter. One buffer can serve all vCPUs.
   */
  sharedBytes?: Uint8Array;
  sharedPortValues?: readonly SharedPortValue[];
  /** The host CPUs the worker pins itself to before the guest first runs (`--cpus affinity=`); absent: anywhere. */
  hostCpus?: readonly number[];
  /**
   * Tests only: run `module` instead of vcpu-worker, a fake vCPU that speaks
   * the same protocol without KVM; it finds `data` in its start message's
   * fakeData. A fake worker is never pre-started.
   */
  fakeWorker?: { module: URL; data: unknown };
}

export class VcpuThread {
  /** This vCPU's mailbox and control words (its VcpuSet reads and answers them). */
  readonly channel = VcpuChannel.create();
  private worker: Worker | undefined;
  private workerGone = true;
  private exitReport: VcpuExit | undefined;
  private firstRun: bigint | undefined;
  private finishedPromise: Promise<VcpuExit | undefined> = Promise.resolve(undefined);

  /** Use VcpuSet.add(), which creates the thread in its set. */
  constructor(private readonly set: VcpuSet, private readonly options: VcpuThreadOptions) {
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

  /** When the worker first entered KVM_RUN (process.hrtime.bigint()), once the main thread has heard. */
  get firstRunAt(): bigint | undefined {
    return this.firstRun;
  }

  /** Resolves when the worker has ended: with its exit report, or undefined if it was stopped. */
  get finished(): Promise<VcpuExit | undefined> {
    return this.finishedPromise;
  }

  /**
   * Starts the vCPU in `prestarted`, the worker PrestartedVcpuWorkers started
   * for it (from now on this thread's), else in a worker of its own, and
   * sends the worker its start message. Throws if it cannot (the worker is
   * then ended); VcpuSet.startAll() then stops the ones already started.
   */
  start(prestarted?: Worker): void {
    let worker = prestarted;
    try {
      if (this.worker) throw new Error(`vCPU ${this.vcpuId} was already started`);
      if (prestarted && this.options.fakeWorker) throw new Error(`vCPU ${this.vcpuId} runs a fake worker, which is never pre-started`);
      installKickHandler();
      this.options.vcpu.run.immediateExit = false;
      const message = this.startMessage();
      worker ??= startVcpuWorker(this.vcpuId, this.options.fakeWorker?.module);
      worker.postMessage(message);
    } catch (error) {
      if (worker) void endWaitingWorker(worker);
      throw error;
    }
    this.watch(worker);
    this.set.serve();
  }

  private startMessage(): VcpuStartMessage {
    const { vcpu, sharedBytes, sharedPortValues, fakeWorker, hostCpus } = this.options;
    return {
      vcpuId: vcpu.id,
      vcpuFd: vcpu.fd,
      mmapSize: vcpu.mmapSize,
      channel: this.channel.buffer,
      shared: this.set.shared.buffer,
      sharedBytes: sharedBytes?.buffer as SharedArrayBuffer | undefined,
      sharedPortValues: (sharedPortValues ?? []).map((p) => ({
        port: p.port, sharedByteIndex: (sharedBytes?.byteOffset ?? 0) + p.sharedByteIndex,
      })),
      fakeData: fakeWorker?.data,
      hostCpus,
      // `--trace exits`: the thread writes its own lines to the trace's file descriptor.
      trace: trace.exits && trace.sinkFd !== undefined ? { fd: trace.sinkFd, startTime: trace.startTime } : undefined,
    };
  }

  /** Listens to the worker, now running this vCPU, until it ends. */
  private watch(worker: Worker): void {
    this.worker = worker;
    this.workerGone = false;
    this.finishedPromise = new Promise((resolve) => {
      worker.on('message', (message: VcpuWorkerMessage) => {
        if (message.type === 'exit') this.report(message.exit);
        else this.noteFirstRun(message.at);
      });
      worker.on('error', (error) => {
        this.report(errorExit(this.vcpuId, `vCPU ${this.vcpuId} thread crashed: ${error.message}`));
      });
      worker.on('exit', () => {
        this.workerGone = true;
        this.set.shared.ringMain(); // lets the set's loop apply what is left, and notice
        resolve(this.exitReport);
      });
    });
  }

  /**
   * Stops the vCPU whatever it is doing (running guest code, halted inside
   * KVM_RUN, waiting for a read or for ring space) and resolves once its
   * thread has ended.
   */
  async stop(): Promise<void> {
    if (!this.worker) return;
    if (!this.workerGone) {
      Atomics.store(this.channel.control, Ctl.STOP, 1);
      this.options.vcpu.run.immediateExit = true;
      const threadId = Atomics.load(this.channel.control, Ctl.THREAD_ID);
      if (threadId !== 0) kickThread(threadId);
      this.channel.ringWorker();
      this.set.shared.ringWriters();
    }
    await this.finishedPromise;
  }

  /** A device failed on one of this vCPU's accesses: the vCPU ends with that error. */
  fail(message: string): void {
    this.report(errorExit(this.vcpuId, message));
    void this.stop();
  }

  private noteFirstRun(at: bigint): void {
    if (this.firstRun !== undefined) return;
    this.firstRun = at;
    this.options.onFirstRun?.(at);
  }

  private report(exit: VcpuExit): void {
    if (this.exitReport) return; // the first cause is the one that matters
    // Writes the guest made before it died (a panic message...) come first.
    this.set.drainPostedWrites();
    this.exitReport = exit;
    this.options.onExit?.(exit);
  }
}
