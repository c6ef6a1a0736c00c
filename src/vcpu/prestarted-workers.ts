// vCPU worker threads started before their vCPUs exist. A worker's start-up
// (a new V8 isolate loading vcpu-worker.js, koffi and the libc bindings)
// takes tens of milliseconds of CPU time; Vm.start() starts the workers
// first, so that they load while the main thread builds the VM, and each
// waits for the one message that gives it its vCPU (VcpuThread.start()).
// Workers nobody took are sent away with endUnused(): told by a message,
// not Worker.terminate(), because Node 20 leaks the fd of a module file a
// worker terminated while loading was reading.

import { Worker } from 'node:worker_threads';
import type { VcpuStartMessage } from './vcpu-worker.js';

// By its compiled name, as every import is; tests run the sources, where
// test/support/typescript-hooks.mjs finds vcpu-worker.ts for it.
const VCPU_WORKER_MODULE = new URL('./vcpu-worker.js', import.meta.url);

/**
 * Starts the worker for vCPU `vcpuId`: vcpu-worker.js, or a test's fake
 * module. It loads its modules, then waits for its start message.
 */
export function startVcpuWorker(vcpuId: number, module: URL = VCPU_WORKER_MODULE): Worker {
  return new Worker(module, { name: `vcpu${vcpuId}` });
}

interface WaitingWorker {
  worker: Worker;
  /** Listens for the worker failing or ending while it waits. */
  drop: () => void;
}

export class PrestartedVcpuWorkers {
  private readonly waiting = new Map<number, WaitingWorker>();

  /** Starts a worker for each of vCPUs 0 to `count` - 1. */
  constructor(count: number) {
    for (let vcpuId = 0; vcpuId < count; vcpuId++) {
      const worker = startVcpuWorker(vcpuId);
      // While it waits, a worker does not keep the process alive (take() refs
      // it), and one that fails (it could not load its modules) or ends is
      // dropped: VcpuThread.start() then starts one of its own, whose
      // failure it hears and reports.
      worker.unref();
      const drop = () => {
        if (this.waiting.get(vcpuId)?.worker === worker) this.waiting.delete(vcpuId);
      };
      worker.on('error', drop).on('exit', drop);
      this.waiting.set(vcpuId, { worker, drop });
    }
  }

  /** The worker started for vCPU `vcpuId`, now the caller's to start or end; undefined if there is none. */
  take(vcpuId: number): Worker | undefined {
    const waiting = this.waiting.get(vcpuId);
    if (waiting === undefined) return undefined;
    this.waiting.delete(vcpuId);
    const { worker, drop } = waiting;
    worker.off('error', drop).off('exit', drop);
    worker.ref();
    return worker;
  }

  /** Sends away the workers nobody took; resolves once they have loaded and ended. */
  async endUnused(): Promise<void> {
    const unused = [...this.waiting.values()];
    this.waiting.clear();
    await Promise.all(unused.map(({ worker }) => endWaitingWorker(worker)));
  }
}

/**
 * Tells a worker still waiting for its start message that there is no vCPU
 * for it: it ends once it has loaded. Resolves when it has ended.
 */
export function endWaitingWorker(worker: Worker): Promise<void> {
  const ended = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  worker.on('error', () => {}); // Nobody needs it any more: a failure while it loads does not matter.
  worker.ref(); // Until it has ended, or the process could exit with this promise still pending.
  worker.postMessage(null satisfies VcpuStartMessage | null);
  return ended;
}
