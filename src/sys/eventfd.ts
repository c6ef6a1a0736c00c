// An eventfd(2): a 64-bit counter in the kernel behind a file descriptor.
// KVM uses them as doorbells in both directions without a vCPU exit:
//   irqfd:     we write (signal) it, KVM raises a guest interrupt;
//   ioeventfd: the guest writes a device register, KVM signals it, we read (consume) it.

import { EFD_CLOEXEC, EFD_NONBLOCK, check, closeFd, libc, lastErrno } from './libc.js';
import { Errno, SystemCallError } from './system-error.js';

export class EventFd {
  private fdOrClosed: number;
  private readonly counter = new Uint8Array(8);
  private readonly counterView = new DataView(this.counter.buffer);

  private constructor(fd: number) {
    this.fdOrClosed = fd;
  }

  /** A non-blocking, close-on-exec eventfd with counter 0. */
  static create(): EventFd {
    return new EventFd(check('eventfd', libc.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)));
  }

  get fd(): number {
    if (this.fdOrClosed < 0) throw new Error('eventfd is closed');
    return this.fdOrClosed;
  }

  /** Adds `value` to the counter, waking whoever waits on it. */
  signal(value = 1n): void {
    this.counterView.setBigUint64(0, value, true);
    if (libc.write(this.fd, this.counter, 8) < 0) throw new SystemCallError('write eventfd', lastErrno());
  }

  /** Reads and resets the counter; 0n when it was not signalled. */
  consume(): bigint {
    if (libc.read(this.fd, this.counter, 8) < 0) {
      const errno = lastErrno();
      if (errno === Errno.EAGAIN) return 0n;
      throw new SystemCallError('read eventfd', errno);
    }
    return this.counterView.getBigUint64(0, true);
  }

  close(): void {
    if (this.fdOrClosed < 0) return;
    const fd = this.fdOrClosed;
    this.fdOrClosed = -1;
    closeFd(fd);
  }
}
