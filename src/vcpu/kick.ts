// Kicking a vCPU thread out of KVM_RUN. A thread blocked in an ioctl cannot
// be reached from JavaScript (Worker.terminate() waits for it to return), so:
//
//   1. set kvm_run.immediate_exit = 1: from now on KVM_RUN returns EINTR at
//      once instead of entering the guest (closes the race where the signal
//      lands just before the thread enters KVM_RUN);
//   2. send the thread a signal with tgkill(): a thread inside KVM_RUN leaves
//      the guest and KVM_RUN returns EINTR.
//
// The signal needs a handler that does nothing, or its default action kills
// the process. SIGUSR1 is taken (Node starts the inspector on it), so we use
// SIGUSR2 with an empty `process.on` listener: Node installs a real handler
// for it process-wide. Realtime signals would be tidier but Node cannot
// listen for them. See Documentation/virt/kvm/api.rst, "immediate_exit".

import { isMainThread } from 'node:worker_threads';
import { constants } from 'node:os';
import { lastErrno, libc } from '../sys/libc.js';
import { Errno, SystemCallError } from '../sys/system-error.js';

export const KICK_SIGNAL = 'SIGUSR2';
const KICK_SIGNAL_NUMBER = constants.signals[KICK_SIGNAL];

const ignoreKick = (): void => {};
let installed = false;

/**
 * Installs the no-op SIGUSR2 handler (once). Must run on the main thread:
 * Node ignores signal listeners added in workers.
 */
export function installKickHandler(): void {
  if (installed) return;
  if (!isMainThread) {
    throw new Error('vCPUs must be started from the main thread (the kick signal handler is installed there)');
  }
  process.on(KICK_SIGNAL, ignoreKick);
  installed = true;
}

/**
 * Interrupts thread `threadId` of this process (from gettid()). A thread
 * that has already ended (ESRCH) needs no kick.
 */
export function kickThread(threadId: number): void {
  if (libc.tgkill(libc.getpid(), threadId, KICK_SIGNAL_NUMBER) < 0 && lastErrno() !== Errno.ESRCH) {
    throw new SystemCallError(`tgkill ${KICK_SIGNAL}`, lastErrno());
  }
}
