// The few libc functions a VMM needs, bound with koffi. Each binding is a
// plain, non-variadic prototype: ioctl() is variadic in C, but koffi's
// variadic calls re-parse the argument types on every call, which is far too
// slow for KVM_RUN. So there are two ioctl bindings, one whose third argument
// is an integer and one whose third argument is a pointer (a Buffer).
//
// The raw bindings return -1 and leave errno set, as C does; the exported
// helpers below check the result and throw a SystemCallError naming the call.

import koffi from 'koffi';
import { SystemCallError, setErrnoDescriber } from './system-error.js';

const lib = koffi.load('libc.so.6');

/** Raw bindings. Pointers are plain numbers (user-space addresses fit in 47 bits). */
export const libc = {
  open: lib.func('open', 'int', ['str', 'int', 'int']),
  close: lib.func('close', 'int', ['int']),
  read: lib.func('read', 'intptr_t', ['int', 'void *', 'size_t']),
  write: lib.func('write', 'intptr_t', ['int', 'void *', 'size_t']),
  /** ioctl whose argument is an integer (or absent: pass 0). */
  ioctlInt: lib.func('ioctl', 'int', ['int', 'ulong', 'ulong']),
  /** ioctl whose argument points at a struct: pass a Buffer, the kernel reads/writes it in place. */
  ioctlPtr: lib.func('ioctl', 'int', ['int', 'ulong', 'void *']),
  /** Returns the mapping address, or -1 (MAP_FAILED). */
  mmap: lib.func('mmap', 'intptr_t', ['intptr_t', 'size_t', 'int', 'int', 'int', 'int64_t']),
  munmap: lib.func('munmap', 'int', ['intptr_t', 'size_t']),
  eventfd: lib.func('eventfd', 'int', ['uint', 'int']),
  getpid: lib.func('getpid', 'int', []),
  gettid: lib.func('gettid', 'int', []),
  tgkill: lib.func('tgkill', 'int', ['int', 'int', 'int']),
  /** pid 0: the calling thread. The mask is a cpu_set_t (thread-affinity.ts). */
  sched_setaffinity: lib.func('sched_setaffinity', 'int', ['int', 'size_t', 'void *']),
  strerror: lib.func('strerror', 'str', ['int']),
};

setErrnoDescriber((errno) => libc.strerror(errno) ?? '');

/** errno of the last FFI call made on this thread. */
export function lastErrno(): number {
  return koffi.errno();
}

export const O_RDWR = 0o2;
export const O_CLOEXEC = 0o2000000;
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const MAP_SHARED = 0x01;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;

/** Throws SystemCallError(`call`, errno) when `result` is negative; returns it otherwise. */
export function check(call: string, result: number): number {
  if (result < 0) throw new SystemCallError(call, koffi.errno());
  return result;
}

export function closeFd(fd: number): void {
  check('close', libc.close(fd));
}

/** ioctl with an integer argument; `name` (e.g. "KVM_CREATE_VM") goes into the error message. */
export function ioctlInt(fd: number, request: number, arg: number, name: string): number {
  return check(name, libc.ioctlInt(fd, request, arg));
}

/** ioctl with a pointer argument: `buffer` is read and/or written by the kernel in place. */
export function ioctlPtr(fd: number, request: number, buffer: Uint8Array, name: string): number {
  return check(name, libc.ioctlPtr(fd, request, buffer));
}

/** mmap(NULL, length, prot, flags, fd, 0); returns the host address. */
export function mapMemory(length: number, prot: number, flags: number, fd = -1): number {
  const address = libc.mmap(0, length, prot, flags, fd, 0);
  if (address === -1) throw new SystemCallError('mmap', koffi.errno(), `${length} bytes`);
  return address;
}

export function unmapMemory(address: number, length: number): void {
  check('munmap', libc.munmap(address, length));
}

/**
 * A live view of `length` bytes of host memory at `address` (no copy).
 * The view dangles once the memory is unmapped: drop it first.
 */
export function viewMemory(address: number, length: number): Uint8Array {
  return new Uint8Array(koffi.view(address, length));
}

// --- Byte-range file locks (fcntl(2) "open file description locks") ---
// Used by disk images (src/devices/virtio/block/disk-image.ts). An OFD lock
// belongs to the open file, not to the process, so it holds for as long as
// the file stays open and goes away with it, even if the process is killed.

/** fcntl whose third argument points at a struct flock: non-variadic, like ioctlPtr. */
const fcntlFlock = lib.func('fcntl', 'int', ['int', 'int', 'void *']);

export const F_OFD_GETLK = 36;
export const F_OFD_SETLK = 37;
export const F_RDLCK = 0;
export const F_WRLCK = 1;
export const F_UNLCK = 2;
const SEEK_SET = 0;

/** struct flock on x86_64: l_type, l_whence (short), l_start, l_len (off_t, at 8 and 16), l_pid (int, at 24). */
const FLOCK_BYTES = 32;

/** A lock on `length` bytes at `start` (length 0: up to the end of the file, however far it grows). */
export interface ByteRangeLock {
  type: typeof F_RDLCK | typeof F_WRLCK;
  start: number;
  length: number;
}

function flock(type: number, start: number, length: number): Buffer {
  const buffer = Buffer.alloc(FLOCK_BYTES); // l_pid must be 0 for OFD locks
  buffer.writeInt16LE(type, 0);
  buffer.writeInt16LE(SEEK_SET, 2);
  buffer.writeBigInt64LE(BigInt(start), 8);
  buffer.writeBigInt64LE(BigInt(length), 16);
  return buffer;
}

/**
 * Takes an OFD lock (F_RDLCK shared, F_WRLCK exclusive), or drops one
 * (F_UNLCK), without waiting. Returns false when a lock taken through
 * another open file conflicts; throws a SystemCallError on other failures
 * (e.g. ENOLCK on a file system without locks).
 */
export function trySetOfdLock(fd: number, type: number, start: number, length: number): boolean {
  if (fcntlFlock(fd, F_OFD_SETLK, flock(type, start, length)) === 0) return true;
  const errno = koffi.errno();
  // Linux says EAGAIN; POSIX allows EACCES for the same conflict.
  if (errno === koffi.os.errno.EAGAIN || errno === koffi.os.errno.EACCES) return false;
  throw new SystemCallError('fcntl F_OFD_SETLK', errno);
}

/**
 * The first lock, held through another open file, that would keep us from
 * taking `type` on the range (F_OFD_GETLK); undefined when there is none.
 */
export function conflictingOfdLock(fd: number, type: number, start: number, length: number): ByteRangeLock | undefined {
  const buffer = flock(type, start, length);
  check('fcntl F_OFD_GETLK', fcntlFlock(fd, F_OFD_GETLK, buffer));
  const found = buffer.readInt16LE(0);
  if (found === F_UNLCK) return undefined;
  return {
    type: found === F_WRLCK ? F_WRLCK : F_RDLCK,
    start: Number(buffer.readBigInt64LE(8)),
    length: Number(buffer.readBigInt64LE(16)),
  };
}
