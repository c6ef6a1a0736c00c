// Checks what a VmConfig means: ranges, reserved values, options that
// exclude each other, and the files it names. Messages name the command-line
// option a user would fix, since that is how most configurations are made.
import { existsSync, statSync } from 'node:fs';
import { cpus as hostCpus } from 'node:os';
import { resolve } from 'node:path';
import { validateCpuAffinity } from './cpu-affinity.js';
import { checkCanCreateIn, checkReadableFile, checkWritableFile } from './files.js';
import { diskIdProblem, vsockSocketPathProblem } from './rules.js';
import {
  ConfigError,
  MAX_CMDLINE_BYTES,
  MAX_CPUS,
  MAX_MEMORY_BYTES,
  MEMORY_ALIGNMENT,
  MIN_MEMORY_BYTES,
  type CharMode,
  type DiskConfig,
  type VmConfig,
  type VsockConfig,
} from './types.js';
import { formatSize } from './values.js';

/** Throws a ConfigError for the first problem found. */
export function validateVmConfig(config: VmConfig): void {
  validateSettings(config);
  validateGuestImages(config);
}

/** Everything but the kernel and initramfs. */
export function validateSettings(config: VmConfig): void {
  validateCpus(config.cpus.boot);
  if (config.cpus.affinity !== undefined) validateCpuAffinity(config.cpus.affinity, config.cpus.boot, hostCpus().length);
  validateMemory(config.memory.sizeBytes);
  validateCmdline(config.cmdline);
  validateCharDevices(config.serial, config.console);
  validateDisks(config.disks);
  if (config.vsock) validateVsock(config.vsock);
  if (config.trace?.file !== undefined) checkOutputFile('--trace-file', config.trace.file);
}

export function validateGuestImages(config: VmConfig): void {
  checkReadableFile('--kernel', config.kernel);
  if (config.initramfs !== undefined) checkReadableFile('--initramfs', config.initramfs);
}

function validateCpus(boot: number): void {
  if (!Number.isInteger(boot) || boot < 1 || boot > MAX_CPUS) {
    throw new ConfigError(`--cpus: boot=${boot} is out of range (1 to ${MAX_CPUS})`);
  }
}

function validateMemory(bytes: number): void {
  const given = `size=${formatSize(bytes)}`;
  if (!Number.isSafeInteger(bytes) || bytes < MIN_MEMORY_BYTES) {
    throw new ConfigError(`--memory: ${given} is too small: the guest needs at least ${formatSize(MIN_MEMORY_BYTES)}`);
  }
  if (bytes > MAX_MEMORY_BYTES) {
    throw new ConfigError(`--memory: ${given} is more than the ${formatSize(MAX_MEMORY_BYTES)} tsvmm supports`);
  }
  if (bytes % MEMORY_ALIGNMENT !== 0) {
    throw new ConfigError(`--memory: ${given} is not a whole number of 4K pages`);
  }
}

function validateCmdline(cmdline: string): void {
  const bytes = Buffer.byteLength(cmdline, 'utf8');
  if (bytes > MAX_CMDLINE_BYTES) {
    throw new ConfigError(`--cmdline: ${bytes} bytes is longer than the kernel's limit of ${MAX_CMDLINE_BYTES}`);
  }
}

function validateCharDevices(serial: CharMode, console: CharMode): void {
  if (serial.kind === 'tty' && console.kind === 'tty') {
    throw new ConfigError('--serial and --console cannot both be tty: set one of them to off, null or file=PATH');
  }
  if (serial.kind === 'file' && console.kind === 'file' && resolve(serial.path) === resolve(console.path)) {
    throw new ConfigError(`--serial and --console both write to ${serial.path}: give each its own file`);
  }
  for (const [option, mode] of [['--serial', serial], ['--console', console]] as const) {
    if (mode.kind === 'file') checkOutputFile(option, mode.path);
  }
}

/** The backend creates or truncates the file: its directory must allow that, or the file must be writable. */
function checkOutputFile(option: string, path: string): void {
  if (existsSync(path)) {
    if (statSync(path).isDirectory()) throw new ConfigError(`${option}: cannot write ${path}: is a directory`);
    checkWritableFile(option, path, 'pick another file');
  } else {
    checkCanCreateIn(option, path, 'output file');
  }
}

function validateDisks(disks: readonly DiskConfig[]): void {
  const ids = new Set<string>();
  const paths = new Set<string>();
  for (const disk of disks) {
    if (disk.id !== undefined) {
      const problem = diskIdProblem(disk.id);
      if (problem !== undefined) throw new ConfigError(`--disk: ${problem}`);
      if (ids.has(disk.id)) throw new ConfigError(`--disk: id "${disk.id}" is used by two disks`);
      ids.add(disk.id);
    }
    const absolute = resolve(disk.path);
    if (paths.has(absolute)) throw new ConfigError(`--disk: ${disk.path} is given twice`);
    paths.add(absolute);
    checkReadableFile('--disk', disk.path, true);
    if (!disk.readonly) checkWritableFile('--disk', disk.path, 'add readonly=on to use it read-only');
  }
}

/** Reserved CIDs (vsock(7); Cloud Hypervisor docs/vsock.md calls -1 "random"). */
const RESERVED_CIDS: ReadonlyMap<number, string> = new Map([
  [0, 'CID 0 is reserved for the hypervisor'],
  [1, 'CID 1 is the local loopback address'],
  [2, 'CID 2 is the host (the guest connects to it)'],
  [0xffff_ffff, 'CID -1 (0xFFFFFFFF) is VMADDR_CID_ANY, the "any/random" wildcard'],
]);

function validateVsock(vsock: VsockConfig): void {
  const pick = 'pick a CID from 3 to 4294967294';
  const reserved = RESERVED_CIDS.get(vsock.cid);
  if (reserved !== undefined) throw new ConfigError(`--vsock: ${reserved}; ${pick}`);
  if (!Number.isInteger(vsock.cid) || vsock.cid < 0 || vsock.cid > 0xffff_ffff) {
    throw new ConfigError(`--vsock: cid=${vsock.cid} is not a 32-bit CID; ${pick}`);
  }
  const problem = vsockSocketPathProblem(vsock.socket);
  if (problem !== undefined) throw new ConfigError(`--vsock: ${problem}`);
  checkCanCreateIn('--vsock', vsock.socket, 'socket');
}
