// Errors from system calls made through FFI. Node's own fs errors carry
// `code` and `syscall`; ours do the same so that callers can test
// `error.code === 'EINTR'`, and the message names the call that failed,
// e.g. "KVM_CREATE_VM failed: EINVAL (Invalid argument)".

import { os as koffiOs } from 'koffi';

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(koffiOs.errno)) {
  // Several names share a number (EAGAIN/EWOULDBLOCK); keep the first, the classic one.
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}

/** errno number -> symbolic name, e.g. 22 -> "EINVAL". */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

/** The errno numbers we test for by name. */
export const Errno = {
  EINTR: koffiOs.errno.EINTR!,
  EAGAIN: koffiOs.errno.EAGAIN!,
  ENOENT: koffiOs.errno.ENOENT!,
  EACCES: koffiOs.errno.EACCES!,
  EPERM: koffiOs.errno.EPERM!,
  EBADF: koffiOs.errno.EBADF!,
  EEXIST: koffiOs.errno.EEXIST!,
  E2BIG: koffiOs.errno.E2BIG!,
  ENOMEM: koffiOs.errno.ENOMEM!,
  EINVAL: koffiOs.errno.EINVAL!,
  ESRCH: koffiOs.errno.ESRCH!,
} as const;

// strerror() text is filled in lazily by libc.ts (which owns the FFI
// bindings) to avoid a circular import.
let describe: (errno: number) => string = () => '';
export function setErrnoDescriber(fn: (errno: number) => string): void {
  describe = fn;
}

/** A failed system call or ioctl: `call` is "open", "mmap", "KVM_RUN", ... */
export class SystemCallError extends Error {
  readonly code: string;

  constructor(
    readonly call: string,
    readonly errno: number,
    detail?: string,
  ) {
    const text = describe(errno);
    super(`${call} failed: ${errnoName(errno)}${text ? ` (${text})` : ''}${detail ? `: ${detail}` : ''}`);
    this.name = 'SystemCallError';
    this.code = errnoName(errno);
  }
}
