// How a VM ended, and the exit status tsvmm gives for it. A CI step reads
// nothing but that status, so each way of ending has its own, and the
// README's "Exit status" table is this file in prose.
import type { VcpuExit } from '../vcpu/vcpu-exit.js';

/** Why a VM stopped. */
export type VmExitReason =
  /** The guest reported its status through the guest status device's EXIT register. */
  | 'guest-status'
  /** The guest kernel panicked. */
  | 'panic'
  /** The guest powered off (ACPI sleep state S5, or KVM's shutdown event). */
  | 'poweroff'
  /** The guest reset the machine (Linux's reboot, e.g. through the i8042). */
  | 'reset'
  /** `--timeout` ran out. */
  | 'timeout'
  /** SIGINT or SIGTERM, or the library's stop(). */
  | 'signal'
  /** The library caller's AbortSignal fired. */
  | 'aborted'
  /** The user pressed Ctrl-A x on the terminal. */
  | 'quit'
  /** The guest could not go on: triple fault, KVM error, a crashed vCPU thread. */
  | 'guest-died';

/** Why a VM stopped, and the exit status tsvmm reports for it. */
export interface VmExit {
  /** How the VM ended. */
  readonly reason: VmExitReason;
  /** tsvmm's exit status (see the constants below). */
  readonly status: number;
  /** One line for the user, when there is something to say. */
  readonly message?: string;
}

/** The guest died (triple fault, KVM could not run it, ...). */
export const EXIT_GUEST_DIED = 1;
/** The guest kernel panicked. */
export const EXIT_GUEST_PANIC = 101;
/** `--timeout` ran out, as timeout(1) reports it. */
export const EXIT_TIMEOUT = 124;
/** Stopped by a signal: 128 + its number, as a shell reports it. */
export const EXIT_SIGINT = 130;
export const EXIT_SIGTERM = 143;
/** The library caller's AbortSignal stopped the VM: reported as an interrupted command is (SIGINT's). */
export const EXIT_ABORTED = EXIT_SIGINT;

/**
 * The end of a guest that stopped on its own terms (reset or power-off): 0,
 * or the status it reported beforehand through the STATUS register.
 */
export function guestEnded(reason: 'reset' | 'poweroff', reportedStatus: number | undefined): VmExit {
  if (reportedStatus === undefined) return { reason, status: 0 };
  return { reason, status: reportedStatus };
}

export function guestReportedExit(status: number): VmExit {
  return { reason: 'guest-status', status };
}

export function guestPanicked(reason: string | undefined): VmExit {
  const quoted = reason === undefined ? '(its reason did not reach a console)' : `"${reason}"`;
  return { reason: 'panic', status: EXIT_GUEST_PANIC, message: `guest kernel panicked: ${quoted}` };
}

export function timedOut(seconds: number): VmExit {
  return { reason: 'timeout', status: EXIT_TIMEOUT, message: `timed out after ${seconds} s: the VM was stopped` };
}

export function stoppedBySignal(signal: 'SIGINT' | 'SIGTERM'): VmExit {
  return { reason: 'signal', status: signal === 'SIGINT' ? EXIT_SIGINT : EXIT_SIGTERM, message: `stopped by ${signal}` };
}

export function guestDied(message: string): VmExit {
  return { reason: 'guest-died', status: EXIT_GUEST_DIED, message: `guest died: ${message}` };
}

export function aborted(): VmExit {
  return { reason: 'aborted', status: EXIT_ABORTED, message: 'stopped: the abort signal fired' };
}

/** What tsvmm knows of the guest's end when it has to decide the verdict. */
export interface GuestEvidence {
  /** The kernel panicked: the warm-reset flag only its panic path sets, or a panic line on its console. */
  readonly kernelPanicked: boolean;
  /** The panic's reason, when it reached a console. */
  readonly panicReason: string | undefined;
  /** What the guest reported through the STATUS register, if anything. */
  readonly reportedStatus: number | undefined;
}

/** The guest reset or powered off on its own: its reported status (or 0), unless the reset followed a panic. */
export function guestEndedVerdict(how: 'reset' | 'poweroff', evidence: GuestEvidence): VmExit {
  if (how === 'reset' && evidence.kernelPanicked) return guestPanicked(evidence.panicReason);
  return guestEnded(how, evidence.reportedStatus);
}

/**
 * A vCPU stopped for good. A kernel that panicked may end in a triple fault
 * rather than the reset it asked for (Linux falls back through its reboot
 * methods, ending in a jump to the reset vector, while the reset it asked
 * for first is still on its way to the device): the panic is the verdict.
 */
export function vcpuStoppedVerdict(exit: VcpuExit, evidence: GuestEvidence): VmExit {
  if (exit.kind === 'system-event' && exit.systemEvent === 'reset') return guestEndedVerdict('reset', evidence);
  if (exit.kind === 'system-event' && exit.systemEvent === 'shutdown') return guestEndedVerdict('poweroff', evidence);
  if (exit.kind === 'triple-fault' && evidence.kernelPanicked) return guestPanicked(evidence.panicReason);
  return guestDied(exit.message);
}
