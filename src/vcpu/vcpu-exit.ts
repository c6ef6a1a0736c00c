// What a vCPU reports when it stops running the guest for good: the guest
// halted, triple-faulted, asked for a reset, KVM could not run it, ... The
// VMM turns this into its exit status and a message such as
//   guest died: triple fault (KVM_EXIT_SHUTDOWN) at rip 0xffffffff81000000

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
  details: { suberror?: number; systemEventType?: number; data?: bigint[] },
): VcpuExit {
  const name = exitReasonName(exitReason);
  const at = rip === undefined ? '' : ` at rip 0x${rip.toString(16)}`;
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
