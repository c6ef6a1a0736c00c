// The boot timer (Firecracker has one too): how long a VM took to reach the
// guest's first instruction and the guest's init, measured from the start of
// the process, so that tsvmm's own start-up (Node, imports, VM set-up)
// counts. The first mark is when vCPU 0 first enters KVM_RUN; the second is
// init's write to the guest status device's INIT_STARTED register.
import { performance } from 'node:perf_hooks';

/** Milliseconds since this process started (performance.timeOrigin), for each mark reached. */
export interface BootTimes {
  /** When Vm.start() was called. */
  readonly vmStart: number;
  /** When vCPU 0 first entered the guest. */
  readonly firstInstruction?: number;
  /** When the guest's init signalled its start. */
  readonly init?: number;
}

export class BootTimer {
  private current: BootTimes = { vmStart: performance.now() };

  get times(): BootTimes {
    return this.current;
  }

  /** `at` is process.hrtime.bigint() as read by the vCPU thread (the same clock in every thread). */
  markFirstInstruction(at: bigint): void {
    if (this.current.firstInstruction !== undefined) return;
    const agoMs = Number(process.hrtime.bigint() - at) / 1e6;
    this.current = { ...this.current, firstInstruction: performance.now() - agoMs };
  }

  /** Returns true the first time only. */
  markInit(): boolean {
    if (this.current.init !== undefined) return false;
    this.current = { ...this.current, init: performance.now() };
    return true;
  }
}

/** `boot timer: first instruction at 412 ms, init at 1523 ms (since tsvmm started)`. */
export function formatBootTimes(times: BootTimes): string {
  const at = (ms: number | undefined) => (ms === undefined ? 'not reached' : `at ${Math.round(ms)} ms`);
  return `boot timer: first instruction ${at(times.firstInstruction)}, init ${at(times.init)} (since tsvmm started)`;
}
