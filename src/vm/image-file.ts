// The kernel or initramfs file the user named, open for the loaders to read
// by position (pread): each piece they ask for goes straight into the guest
// RAM view they give, with no copy of the whole file in between. Every
// failure is the user's to fix, a ConfigError naming the option and file;
// the file is closed on each of them, and by close() otherwise.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { ImageSource } from '../arch/x86_64/index.js';
import { describeErrno } from '../config/files.js';
import { ConfigError } from '../config/types.js';

/** Linux reads at most 0x7ffff000 bytes at once, and Node takes at most 2 GiB - 1: larger reads go in pieces. */
const MAX_READ = 1 << 30;

/** A regular file, open read-only until close(). */
export class ImageFile implements ImageSource {
  private fd: number | undefined;

  private constructor(
    fd: number,
    /** The file's size when it was opened: the loaders check offsets against it. */
    readonly size: number,
    private readonly path: string,
    /** The option that named the file (`--kernel`), for error messages. */
    private readonly option: string,
  ) {
    this.fd = fd;
  }

  /** Opens `path`, which `option` named; throws a ConfigError when it cannot be read or is no regular file. */
  static open(path: string, option: string): ImageFile {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (error) {
      throw new ConfigError(`${option}: cannot read ${path}: ${describeErrno(error)}`);
    }
    try {
      const stat = fstatSync(fd);
      if (stat.isDirectory()) throw new ConfigError(`${option}: cannot read ${path}: is a directory`);
      if (!stat.isFile()) throw new ConfigError(`${option}: cannot read ${path}: not a regular file`);
      return new ImageFile(fd, stat.size, path, option);
    } catch (error) {
      closeSync(fd);
      if (error instanceof ConfigError) throw error;
      throw new ConfigError(`${option}: cannot read ${path}: ${describeErrno(error)}`);
    }
  }

  readInto(target: Uint8Array, position: number): void {
    const fd = this.fd;
    if (fd === undefined) throw new Error(`${this.path} was read after it was closed`);
    let done = 0;
    while (done < target.byteLength) {
      let read: number;
      try {
        read = readSync(fd, target, done, Math.min(target.byteLength - done, MAX_READ), position + done);
      } catch (error) {
        throw new ConfigError(`${this.option}: cannot read ${this.path}: ${describeErrno(error)}`);
      }
      if (read === 0) {
        throw new ConfigError(
          `${this.option}: ${this.path} ended at byte ${position + done}, but was ${this.size} bytes when opened: was it changed while tsvmm read it?`);
      }
      done += read;
    }
  }

  /** Closes the file (idempotent). */
  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}
