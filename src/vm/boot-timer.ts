// The boot timer (Firecracker has one too): how long a VM took to reach the
// guest's first instruction and the guest's init, measured from the start of
// the process, so that tsvmm's own start-up (Node, imports, VM set-up)
// counts. The first mark is when vCPU 0 first enters KVM_RUN; the second is
// init's write to the guest status device's INIT_STARTED register. Marks on
// the way to the first instruction say where tsvmm's own start-up goes.
import { performance } from 'node:perf_hooks';

/** Milliseconds since this process started (performance.timeOrigin), for each mark reached. */
export interface BootTimes {
  /** When Vm.start() was called: before it, Node started and loaded tsvmm. */
  readonly vmStart: number;
  /** The KVM VM, guest RAM and the devices are ready. */
  readonly devicesReady?: number;
  /** The kernel, initramfs, command line and boot tables are in guest RAM. */
  readonly bootImage?: number;
  /**
   * The vCPUs are set up (CPUID, registers) and are being given to their
   * threads, which Vm.start() started first and have been loading since: what
   * follows, to the first instruction, is what is left of their start-up.
   */
  readonly vcpusStarting?: number;
  /** When vCPU 0 first entered the guest. */
  readonly firstInstruction?: number;
  /** When the guest's init signalled its start. */
  readonly init?: number;
}

/** The marks on the way to the first instruction, in order. */
type StartUpMark = 'devicesReady' | 'bootImage' | 'vcpusStarting';

export class BootTimer {
  private current: BootTimes = { vmStart: performance.now() };

  get times(): BootTimes {
    return this.current;
  }

  mark(which: StartUpMark): void {
    this.current = { ...this.current, [which]: performance.now() };
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

/**
 * `boot timer: first instruction at 412 ms, init at 1523 ms (since tsvmm
 * started; to the first instruction: Node and imports 70 ms, VM and devices
 * 40 ms, kernel and initramfs 30 ms, vCPUs 5 ms, vCPU threads 60 ms)`, on
 * one line; the breakdown when every mark on the way was reached.
 */
export function formatBootTimes(times: BootTimes): string {
  const at = (ms: number | undefined) => (ms === undefined ? 'not reached' : `at ${Math.round(ms)} ms`);
  return `boot timer: first instruction ${at(times.firstInstruction)}, init ${at(times.init)} (since tsvmm started${startUpBreakdown(times)})`;
}

function startUpBreakdown(times: BootTimes): string {
  const { vmStart, devicesReady, bootImage, vcpusStarting, firstInstruction } = times;
  if (devicesReady === undefined || bootImage === undefined || vcpusStarting === undefined || firstInstruction === undefined) return '';
  const phases: [string, number][] = [
    ['Node and imports', vmStart],
    ['VM and devices', devicesReady - vmStart],
    ['kernel and initramfs', bootImage - devicesReady],
    ['vCPUs', vcpusStarting - bootImage],
    ['vCPU threads', firstInstruction - vcpusStarting],
  ];
  return `; to the first instruction: ${phases.map(([name, ms]) => `${name} ${Math.round(ms)} ms`).join(', ')}`;
}
