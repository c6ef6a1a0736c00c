// Why KVM_RUN returned: kvm_run.exit_reason (KVM_EXIT_* in <linux/kvm.h>),
// plus the sub-codes of the exits tsvmm reports to the user.

export const ExitReason = {
  UNKNOWN: 0,
  EXCEPTION: 1,
  IO: 2,
  HYPERCALL: 3,
  DEBUG: 4,
  HLT: 5,
  MMIO: 6,
  IRQ_WINDOW_OPEN: 7,
  SHUTDOWN: 8,
  FAIL_ENTRY: 9,
  INTR: 10,
  SET_TPR: 11,
  TPR_ACCESS: 12,
  NMI: 16,
  INTERNAL_ERROR: 17,
  WATCHDOG: 21,
  SYSTEM_EVENT: 24,
  IOAPIC_EOI: 26,
  HYPERV: 27,
  X86_RDMSR: 29,
  X86_WRMSR: 30,
  DIRTY_RING_FULL: 31,
  X86_BUS_LOCK: 33,
  XEN: 34,
  NOTIFY: 37,
} as const;

const exitNames = new Map<number, string>(Object.entries(ExitReason).map(([name, n]) => [n, name]));

/** 8 -> "KVM_EXIT_SHUTDOWN"; unknown numbers -> "KVM_EXIT_<n>". */
export function exitReasonName(reason: number): string {
  return `KVM_EXIT_${exitNames.get(reason) ?? reason}`;
}

/** kvm_run.io.direction: 0 is KVM_EXIT_IO_IN, 1 KVM_EXIT_IO_OUT. */
export const KVM_EXIT_IO_OUT = 1;

/** kvm_run.internal.suberror (KVM_EXIT_INTERNAL_ERROR) */
export const InternalErrorNames: Readonly<Record<number, string>> = {
  1: 'emulation failure',
  2: 'exception while delivering an exception (simultaneous exceptions)',
  3: 'error while delivering an event',
  4: 'unexpected exit reason',
};

/** kvm_run.system_event.type (KVM_EXIT_SYSTEM_EVENT) */
export const SystemEventType = {
  SHUTDOWN: 1,
  RESET: 2,
  CRASH: 3,
  WAKEUP: 4,
  SUSPEND: 5,
  SEV_TERM: 6,
} as const;

const systemEventNames = new Map<number, string>(
  Object.entries(SystemEventType).map(([name, n]) => [n, name.toLowerCase()]));

export function systemEventName(type: number): string {
  return systemEventNames.get(type) ?? `type ${type}`;
}
