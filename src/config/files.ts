// File-system checks done while validating the configuration, so that a
// mistyped path is reported before any VM is built, with the option it
// came from: `--kernel: cannot read /x/vmlinux: no such file`.
import { accessSync, constants, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from './types.js';

/**
 * The package root: this file is src/config/files.ts (or dist/config/files.js),
 * two levels below it.
 */
export function packageRoot(): string {
  return fileURLToPath(new URL('../../', import.meta.url));
}

/** Where `npm run images` puts the default guest, under the package root `root`. */
export function defaultGuestImages(root: string): {
  /** The default guest's kernel (guest-images/out/vmlinux). */
  kernel: string;
  /** The default guest's initramfs (guest-images/out/initramfs.cpio.gz). */
  initramfs: string;
} {
  const out = join(root, 'guest-images', 'out');
  return { kernel: join(out, 'vmlinux'), initramfs: join(out, 'initramfs.cpio.gz') };
}

/** Throws unless `path` is a readable file (or block device, for disks). */
export function checkReadableFile(option: string, path: string, allowBlockDevice = false): void {
  const problem = fileProblem(path, constants.R_OK, allowBlockDevice);
  if (problem) throw new ConfigError(`${option}: cannot read ${path}: ${problem}`);
}

/** Throws unless `path` (already known to be readable) can be opened for writing. */
export function checkWritableFile(option: string, path: string, hint: string): void {
  const problem = fileProblem(path, constants.W_OK, true);
  if (problem) throw new ConfigError(`${option}: cannot write ${path}: ${problem} (${hint})`);
}

/** Throws unless the directory that will hold a new file (output log, Unix socket) exists and is writable. */
export function checkCanCreateIn(option: string, path: string, what: string): void {
  const problem = directoryProblem(dirname(path));
  if (problem) throw new ConfigError(`${option}: cannot create ${what} ${path}: ${problem}`);
}

function directoryProblem(directory: string): string | undefined {
  try {
    if (!statSync(directory).isDirectory()) return `${directory} is not a directory`;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? `directory ${directory} does not exist` : `${describeErrno(error)}: ${directory}`;
  }
  try {
    accessSync(directory, constants.W_OK);
    return undefined;
  } catch {
    return `no permission to create files in ${directory}`;
  }
}

function fileProblem(path: string, mode: number, allowBlockDevice: boolean): string | undefined {
  try {
    const stat = statSync(path);
    if (stat.isDirectory()) return 'is a directory';
    if (!stat.isFile() && !(allowBlockDevice && stat.isBlockDevice())) return 'not a regular file';
    accessSync(path, mode);
    return undefined;
  } catch (error) {
    return describeErrno(error);
  }
}

/** Node's errno codes in the words a user expects. */
export function describeErrno(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOTDIR':
      return 'a parent is not a directory';
    case 'ELOOP':
      return 'too many symbolic links';
    case 'EROFS':
      return 'read-only file system';
    default:
      return code ?? String(error);
  }
}
