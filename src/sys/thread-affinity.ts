// Pinning the calling thread to some host CPUs (sched_setaffinity(2) with
// pid 0), as taskset(1) does for a whole process. A vCPU worker calls it
// for itself before it first enters the guest (`--cpus affinity=`).
import { lastErrno, libc } from './libc.js';
import { SystemCallError } from './system-error.js';

/** CPUs a mask can name: glibc's cpu_set_t holds 1024. */
export const MAX_HOST_CPUS = 1024;
/** One bit per CPU. */
const CPU_SET_BYTES = MAX_HOST_CPUS / 8;

/** Lets the calling thread run only on `hostCpus` (each below MAX_HOST_CPUS); throws a SystemCallError if the kernel refuses. */
export function pinCallingThread(hostCpus: readonly number[]): void {
  const mask = Buffer.alloc(CPU_SET_BYTES);
  for (const cpu of hostCpus) mask[cpu >> 3]! |= 1 << (cpu & 7);
  if (libc.sched_setaffinity(0, CPU_SET_BYTES, mask) < 0) {
    throw new SystemCallError(`sched_setaffinity to host CPUs ${hostCpus.join(',')}`, lastErrno());
  }
}
