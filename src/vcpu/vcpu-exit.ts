// What a vCPU reports when it stops running the guest for good: the guest
// halted, triple-faulted, asked for a reset, KVM could not run it, ... The
// VMM turns this into its exit status and a message such as
//   guest died: triple fault (KVM_EXIT_SHUTDOWN) at rip 0xffffffff81000000;
//   rsp 0x..., rflags 0x..., cr0 0x..., cr2 0x..., cr3 0x..., cr4 0x..., efer 0x..., idt 0x.../0x...;
//   after 51234 exits, the last (oldest first): KVM_EXIT_IO in port 0x3fd, ...
// (on one line). A triple fault says nothing of its cause; the control
// registers do: cr2 is the address of the last page fault, cr3 the page
// tables, cr4 and efer the paging mode, idt whether the guest had its
// interrupt table yet. Except on AMD: there KVM resets a vCPU that shut
// down before it returns to us (the VMCB is undefined after a shutdown
// intercept), so its registers are the reset state, rip 0xfff0 in real
// mode; the report says so rather than showing them, and the exits before
// the fault (src/vcpu/recent-exits.ts) are what is left to go on.

import { hex } from '../hex.js';
import {
  ExitReason, InternalErrorNames, exitReasonName, systemEventName,
} from '../kvm/exit-reasons.js';

export type VcpuExitKind =
  /** HLT exit: only seen without the in-kernel irqchip, where nothing could wake the vCPU. */
  | 'halt'
  /** Triple fault (KVM_EXIT_SHUTDOWN). */
  | 'triple-fault'
  /** KVM_EXIT_SYSTEM_EVENT: see `systemEvent` (reset, shutdown, crash, ...). */
  | 'system-event'
  /** KVM refused the vCPU state (KVM_EXIT_FAIL_ENTRY). */
  | 'fail-entry'
  /** KVM could not handle something, e.g. an instruction it cannot emulate. */
  | 'internal-error'
  /** An exit reason tsvmm does not handle. */
  | 'unhandled'
  /** KVM_RUN itself failed, or the worker crashed. */
  | 'error';

/** The registers that say why a guest died, read when it did. */
export interface CpuSnapshot {
  rsp: bigint;
  rflags: bigint;
  cr0: bigint;
  cr2: bigint;
  cr3: bigint;
  cr4: bigint;
  efer: bigint;
  idtBase: bigint;
  idtLimit: number;
}

/** CR0.PE: a guest that tsvmm booted never leaves protected mode, so without it the vCPU was reset. */
const CR0_PROTECTED_MODE = 1n;

function describeSnapshot(cpu: CpuSnapshot): string {
  if ((cpu.cr0 & CR0_PROTECTED_MODE) === 0n) {
    return 'KVM reset the vCPU when it shut down (as on AMD), so its registers at the fault are lost';
  }
  return `rsp ${hex(cpu.rsp)}, rflags ${hex(cpu.rflags)}, cr0 ${hex(cpu.cr0)}, cr2 ${hex(cpu.cr2)}, cr3 ${hex(cpu.cr3)}, `
    + `cr4 ${hex(cpu.cr4)}, efer ${hex(cpu.efer)}, idt ${hex(cpu.idtBase)}/${hex(cpu.idtLimit)}`;
}

export interface VcpuExit {
  vcpuId: number;
  kind: VcpuExitKind;
  /** kvm_run.exit_reason, or -1 when KVM_RUN did not return an exit. */
  exitReason: number;
  /** e.g. "KVM_EXIT_SHUTDOWN". */
  exitReasonName: string;
  /** Guest rip at the exit, when it could be read. */
  rip?: bigint;
  /** For 'system-event': "reset", "shutdown", "crash", ... */
  systemEvent?: string;
  /** Extra words KVM gave (internal error data, system event data, fail-entry reason). */
  data?: bigint[];
  /** One line for humans, without a "guest died" prefix. */
  message: string;
}

/** Builds the report for a fatal kvm_run exit. */
export function describeExit(
  vcpuId: number, exitReason: number, rip: bigint | undefined,
  details: {
    suberror?: number; systemEventType?: number; data?: bigint[]; cpu?: CpuSnapshot;
    /** RecentExits.describe(): what the vCPU did before this exit. */
    recentExits?: string;
  },
): VcpuExit {
  const name = exitReasonName(exitReason);
  const at = (rip === undefined ? '' : ` at rip ${hex(rip)}`) + (details.cpu ? `; ${describeSnapshot(details.cpu)}` : '')
    + (details.recentExits ? `; ${details.recentExits}` : '');
  const base = { vcpuId, exitReason, exitReasonName: name, rip, data: details.data };
  switch (exitReason) {
    case ExitReason.HLT:
      return { ...base, kind: 'halt', message: `vCPU ${vcpuId} halted (${name})${at}` };
    case ExitReason.SHUTDOWN:
      return { ...base, kind: 'triple-fault', message: `triple fault (${name})${at}` };
    case ExitReason.SYSTEM_EVENT: {
      const event = systemEventName(details.systemEventType ?? 0);
      return { ...base, kind: 'system-event', systemEvent: event, message: `guest requested ${event} (${name})${at}` };
    }
    case ExitReason.FAIL_ENTRY: {
      const reason = details.data?.[0];
      const text = reason === undefined ? '' : `, hardware entry failure reason 0x${reason.toString(16)}`;
      return { ...base, kind: 'fail-entry', message: `KVM could not enter the guest (${name}${text})${at}` };
    }
    case ExitReason.INTERNAL_ERROR: {
      const sub = details.suberror ?? 0;
      const subName = InternalErrorNames[sub] ?? `suberror ${sub}`;
      return { ...base, kind: 'internal-error', message: `KVM internal error: ${subName} (${name}, suberror ${sub})${at}` };
    }
    default:
      return { ...base, kind: 'unhandled', message: `unhandled vCPU exit ${name}${at}` };
  }
}

/** Report for a KVM_RUN failure or a crashed worker. */
export function errorExit(vcpuId: number, message: string): VcpuExit {
  return { vcpuId, kind: 'error', exitReason: -1, exitReasonName: 'none', message };
}
