// The host file behind a virtio-blk device: a raw image, read and written
// at byte offsets through Node's promise-based fs (libuv's thread pool), so
// the device loop never waits for the disk, with vector I/O (preadv and
// pwritev) straight between the file and guest memory. The image is locked while open,
// so that two VMs never write one disk, or one reads a disk another writes.
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { ConfigError } from '../../../config/types.js';
import { conflictingOfdLock, F_RDLCK, F_WRLCK, trySetOfdLock, type ByteRangeLock } from '../../../sys/libc.js';
import { SystemCallError } from '../../../sys/system-error.js';

/** A disk image cannot be used (bad path, permissions, not a file, bad option). */
export class BlockDeviceError extends ConfigError {
  constructor(message: string) {
    super(message);
    this.name = 'BlockDeviceError';
  }
}

export class DiskImage {
  private constructor(
    private readonly handle: FileHandle,
    readonly path: string,
    readonly readonly: boolean,
    readonly sizeBytes: number,
  ) {}

  /** Opens a raw image; throws a BlockDeviceError saying what is wrong and what to do. */
  static async open(path: string, readonly: boolean): Promise<DiskImage> {
    let handle: FileHandle;
    try {
      handle = await open(path, readonly ? constants.O_RDONLY : constants.O_RDWR);
    } catch (error) {
      throw new BlockDeviceError(describeOpenError(path, readonly, error));
    }
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) {
        throw new BlockDeviceError(`disk image ${path} is not a regular file (tsvmm takes raw image files)`);
      }
      lockImage(handle.fd, path, readonly);
      return new DiskImage(handle, path, readonly, stats.size);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /**
   * Fills all of `buffers`, in order, from `position`. The buffers are views
   * of guest memory: the data goes from the file straight into the guest,
   * with no buffer of tsvmm's in between.
   */
  async readInto(position: number, buffers: readonly Uint8Array[]): Promise<void> {
    await this.transferAll(position, buffers, async (pending, at) => (await this.handle.readv(pending, at)).bytesRead,
      (at) => `unexpected end of file at ${at} (did the image shrink?)`);
  }

  /** Writes all of `buffers`, in order, at `position`; like readInto, straight from guest memory. */
  async writeAt(position: number, buffers: readonly Uint8Array[]): Promise<void> {
    await this.transferAll(position, buffers, async (pending, at) => (await this.handle.writev(pending, at)).bytesWritten,
      (at) => `write made no progress at ${at}`);
  }

  /**
   * One vector transfer (preadv or pwritev) after another until all of
   * `buffers` is done: a short one goes on where it stopped. `stalled`
   * says what a transfer of 0 bytes means.
   */
  private async transferAll(
    position: number, buffers: readonly Uint8Array[],
    transfer: (pending: Uint8Array[], at: number) => Promise<number>, stalled: (at: number) => string,
  ): Promise<void> {
    let pending = buffers.filter((b) => b.byteLength > 0);
    let at = position;
    while (pending.length > 0) {
      const bytes = await transfer(pending, at);
      if (bytes === 0) throw new BlockDeviceError(`${this.path}: ${stalled(at)}`);
      at += bytes;
      pending = skipBytes(pending, bytes);
    }
  }

  /** Makes completed writes durable (fdatasync: data and the metadata needed to read it). */
  async flush(): Promise<void> {
    await this.handle.datasync();
  }

  /** Closes the file once pending operations finish (which drops its locks). */
  async close(): Promise<void> {
    await this.handle.close();
  }
}

function skipBytes(buffers: readonly Uint8Array[], count: number): Uint8Array[] {
  const rest: Uint8Array[] = [];
  let skip = count;
  for (const b of buffers) {
    if (skip >= b.byteLength) {
      skip -= b.byteLength;
    } else {
      rest.push(b.subarray(skip));
      skip = 0;
    }
  }
  return rest;
}

function describeOpenError(path: string, readonly: boolean, error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return `disk image ${path} does not exist (check --disk path=...)`;
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return readonly
        ? `cannot read disk image ${path}: permission denied`
        : `cannot open disk image ${path} for writing: ${code === 'EROFS' ? 'read-only file system' : 'permission denied'} (add readonly=on to use it read-only)`;
    case 'EISDIR':
      return `disk image ${path} is a directory, not a raw image file`;
    default:
      return `cannot open disk image ${path}: ${(error as Error).message}`;
  }
}

// Locking. QEMU's scheme (block/file-posix.c), so that tsvmm and QEMU see
// each other: each of four permissions has two lock bytes, held as shared
// OFD locks (src/sys/libc.ts) for as long as the image is open:
//
//   byte 100 + p   "I use permission p"
//   byte 200 + p   "I let nobody else have permission p"
//
// A conflict is a byte another open file holds: the "nobody else" byte of
// a permission we use, or the "I use" byte of one we keep to ourselves. Our
// own bytes are taken first and the others' looked at after, so two
// processes opening one image at the same moment both refuse; never both
// succeed. Cloud Hypervisor locks the whole file instead (shared for
// readonly, exclusive for read-write, block/src/fcntl.rs): a whole-file lock
// found on a byte is read with that meaning, and a tsvmm writer also holds
// WRITER_BYTE exclusively, so that Cloud Hypervisor, which looks at no
// particular byte, cannot lock the file while tsvmm writes it.

/** QEMU's permissions (BLK_PERM_*), as bit numbers. */
const Permission = { READ: 0, WRITE: 1, WRITE_UNCHANGED: 2, RESIZE: 3 } as const;
type Permission = (typeof Permission)[keyof typeof Permission];
const USES_BYTE = 100;
const DENIES_BYTE = 200;
/** Outside QEMU's two ranges and libvirt's byte 0 (which QEMU's comment reserves). */
const WRITER_BYTE = 300;

/** Which bytes say what another holder of the image is doing, for the error message. */
function describeConflict(path: string, byte: number, lock: ByteRangeLock): string {
  const holder = `disk image ${path} is in use by another process`;
  if (lock.type === F_WRLCK || byte === USES_BYTE + Permission.WRITE) return `${holder} (locked for writing)`;
  if (byte === USES_BYTE + Permission.RESIZE) return `${holder}, which may resize it (locked for resizing)`;
  if (byte === DENIES_BYTE + Permission.READ) return `${holder}, which does not let others read it (locked against reading)`;
  return `${holder}, which does not let others write to it (locked against writing)`;
}

/**
 * Whether `lock`, found on `byte`, is a conflict: a lock on the whole file
 * is Cloud Hypervisor's, whose shared lock means "reading, and nobody may
 * write" and whose exclusive lock means "writing, and nobody else may use it".
 */
function conflicts(byte: number, lock: ByteRangeLock): boolean {
  const wholeFile = lock.start === 0 && lock.length === 0;
  if (!wholeFile || lock.type === F_WRLCK) return true;
  return byte === DENIES_BYTE + Permission.WRITE;
}

/**
 * Locks the open image for reading, or for reading and writing, or throws a
 * BlockDeviceError naming what holds it. Writers and resizers are kept out
 * either way: tsvmm reads the size once, and a read-only guest does not
 * expect its disk to change under it. A file system without locks leaves
 * the image unlocked rather than unusable.
 */
function lockImage(fd: number, path: string, readonly: boolean): void {
  const uses: Permission[] = readonly ? [Permission.READ] : [Permission.READ, Permission.WRITE];
  const denies: Permission[] = [Permission.WRITE, Permission.RESIZE];
  try {
    const ours = [...uses.map((p) => USES_BYTE + p), ...denies.map((p) => DENIES_BYTE + p)];
    for (const byte of ours) {
      // Only an exclusive lock keeps a shared one out: Cloud Hypervisor writing.
      if (!trySetOfdLock(fd, F_RDLCK, byte, 1)) throw new BlockDeviceError(`disk image ${path} is in use by another process (locked for writing)`);
    }
    // Others using what we deny first: "another process writes it" says more than "it denies writing".
    const theirs = [...denies.map((p) => USES_BYTE + p), ...uses.map((p) => DENIES_BYTE + p)];
    for (const byte of theirs) {
      const lock = conflictingOfdLock(fd, F_WRLCK, byte, 1);
      if (lock !== undefined && conflicts(byte, lock)) throw new BlockDeviceError(describeConflict(path, byte, lock));
    }
    if (!readonly && !trySetOfdLock(fd, F_WRLCK, WRITER_BYTE, 1)) {
      // Only a lock the checks above did not recognise gets here: not ours to share with a writer.
      throw new BlockDeviceError(`disk image ${path} is in use by another process, which does not let others write to it (locked against writing)`);
    }
  } catch (error) {
    if (error instanceof SystemCallError && LOCKS_UNSUPPORTED.has(error.code)) return;
    if (error instanceof SystemCallError) throw new BlockDeviceError(`cannot lock disk image ${path}: ${error.message}`);
    throw error;
  }
}

/** What fcntl says where a file system (or an old kernel) has no OFD locks. */
const LOCKS_UNSUPPORTED = new Set(['ENOLCK', 'EOPNOTSUPP', 'ENOTSUP', 'EINVAL', 'ENOSYS']);
