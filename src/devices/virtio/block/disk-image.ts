// The host file behind a virtio-blk device: a raw image, read and written
// at byte offsets through Node's promise-based fs (libuv's thread pool), so
// the device loop never waits for the disk.
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/** A disk image cannot be used (bad path, permissions, not a file, bad option). */
export class BlockDeviceError extends Error {
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
      return new DiskImage(handle, path, readonly, stats.size);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** Reads exactly `length` bytes at `position` into a new buffer. */
  async readAt(position: number, length: number): Promise<Uint8Array> {
    const buffer = Buffer.allocUnsafe(length);
    for (let done = 0; done < length;) {
      const { bytesRead } = await this.handle.read(buffer, done, length - done, position + done);
      if (bytesRead === 0) throw new BlockDeviceError(`${this.path}: unexpected end of file at ${position + done} (did the image shrink?)`);
      done += bytesRead;
    }
    return buffer;
  }

  /** Writes all of `buffers`, in order, at `position` (looping over short writes). */
  async writeAt(position: number, buffers: readonly Uint8Array[]): Promise<void> {
    let pending = buffers.filter((b) => b.byteLength > 0);
    let at = position;
    while (pending.length > 0) {
      const { bytesWritten } = await this.handle.writev(pending, at);
      if (bytesWritten === 0) throw new BlockDeviceError(`${this.path}: write made no progress at ${at}`);
      at += bytesWritten;
      pending = skipBytes(pending, bytesWritten);
    }
  }

  /** Makes completed writes durable (fdatasync: data and the metadata needed to read it). */
  async flush(): Promise<void> {
    await this.handle.datasync();
  }

  /** Closes the file once pending operations finish. */
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
