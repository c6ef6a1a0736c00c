// The options object a TypeScript caller writes by hand for Vm.start():
// numbers where numbers are natural, sizes as bytes or as the CLI spells
// them ('512M'), objects for disks and vsock. It becomes the same VmConfig
// the CLI builds, through the same checks, so a mistake is reported with the
// same one-line ConfigError the CLI prints.
import type { TraceConfig } from '../trace.js';
import { parseCharMode, parseMemory, parseTimeout, parseTrace } from './options.js';
import { ConfigError, DEFAULT_CPUS, DEFAULT_MEMORY_BYTES, type CharMode, type VcpuAffinity, type VmConfig } from './types.js';

/**
 * Where a character device's output goes and its input comes from:
 * - `'pipe'`: a stream on the VM (`vm.serial`, `vm.console`): read the guest's output, write its input;
 * - `'tty'`: this process's stdout and stdin (what the CLI does);
 * - `'null'`: the device exists, its output is discarded;
 * - `'off'`: no device;
 * - `{ file: PATH }`: output to a file (created or truncated).
 */
export type CharOption = 'pipe' | 'tty' | 'null' | 'off' | {
  /** The output file's path. */
  file: string;
};

/** A disk as Vm.start() takes it; the CLI's `--disk path=...,readonly=on,id=...`. */
export interface DiskOption {
  /** The raw image file. */
  path: string;
  /** Default false: the guest may write, and the image is locked exclusively. */
  readonly?: boolean;
  /** The virtio-blk serial the guest sees (/sys/block/vdX/serial); printable ASCII, at most 20 bytes. */
  id?: string;
}

/** Everything Vm.start() takes. Every field is optional. */
export interface VmStartOptions {
  /** The guest kernel (vmlinux or bzImage). Default: the default guest built by `npm run images`. */
  kernel?: string;
  /** The initramfs. Default: the default guest's, when no kernel is given; none with a kernel of your own. */
  initramfs?: string;
  /** Your part of the kernel command line; init's arguments go after ` -- `. */
  cmdline?: string;
  /** vCPUs (default 1). */
  cpus?: number;
  /** Host CPUs each listed vCPU's thread may run on (the CLI's `--cpus affinity=`), e.g. `[{ vcpu: 0, hostCpus: [0, 1] }]`. Default: anywhere. */
  cpuAffinity?: VcpuAffinity[];
  /** Guest RAM: bytes, or a size as the CLI takes it ('512M', '1G'). Default 512M. */
  memory?: number | string;
  /** virtio-blk disks, in the order given (default none). */
  disks?: DiskOption[];
  /** A virtio-vsock device; `vm.vsock` then connects to and listens for the guest. */
  vsock?: {
    /** The guest's context ID (3 .. 0xFFFFFFFE). */
    cid: number;
    /** Host Unix socket: host->guest connections arrive here; guest->host ones go to `<socket>_<port>`. */
    socket: string;
  };
  /** The 8250 serial port, the kernel's console. Default `'null'`: the library prints nothing unless asked. */
  serial?: CharOption;
  /** A virtio-console (hvc0). Default `'off'`. */
  console?: CharOption;
  /** Stop the VM after this many seconds (its exit: reason 'timeout', status 124). */
  timeoutSeconds?: number;
  /** Trace what the VM does (the CLI's `--trace` and `--trace-file`): categories of src/trace.ts, to stderr or a file. */
  trace?: TraceConfig;
  /** Aborting it stops the VM (its exit: reason 'aborted'); already aborted, Vm.start() rejects. */
  signal?: AbortSignal;
}

/** The library's serial default: the device is there (the guest's console, its panics seen) but silent. */
const LIBRARY_SERIAL_DEFAULT: CharMode = { kind: 'null' };

/** The options as a VmConfig; the kernel and initramfs are left to the caller (they default by the same rule as the CLI's). */
export function settingsFromStartOptions(options: VmStartOptions): Omit<VmConfig, 'kernel' | 'initramfs'> {
  if (typeof options !== 'object' || options === null) throw new ConfigError('Vm.start: options must be an object');
  const config: Omit<VmConfig, 'kernel' | 'initramfs'> = {
    cmdline: stringOption('--cmdline', options.cmdline) ?? '',
    cpus: { boot: options.cpus === undefined ? DEFAULT_CPUS : wholeNumber('--cpus', options.cpus) },
    memory: { sizeBytes: memoryBytes(options.memory) },
    serial: options.serial === undefined ? LIBRARY_SERIAL_DEFAULT : charMode('--serial', options.serial),
    console: options.console === undefined ? { kind: 'off' } : charMode('--console', options.console),
    disks: (options.disks ?? []).map((disk) => {
      if (typeof disk !== 'object' || disk === null || typeof disk.path !== 'string') {
        throw new ConfigError('--disk: each disk is an object with a path, e.g. { path: "rootfs.ext4", readonly: true }');
      }
      return { path: disk.path, readonly: disk.readonly === true, ...(disk.id === undefined ? {} : { id: disk.id }) };
    }),
  };
  if (options.cpuAffinity !== undefined) {
    if (!Array.isArray(options.cpuAffinity)) {
      throw new ConfigError('--cpus: cpuAffinity must be an array, e.g. [{ vcpu: 0, hostCpus: [0, 1] }]');
    }
    config.cpus.affinity = options.cpuAffinity.map((entry: unknown) => {
      const { vcpu, hostCpus } = (entry ?? {}) as Partial<VcpuAffinity>;
      if (typeof vcpu !== 'number' || !Array.isArray(hostCpus)) {
        throw new ConfigError('--cpus: each cpuAffinity entry is { vcpu: N, hostCpus: [CPU, ...] }');
      }
      return { vcpu, hostCpus: [...hostCpus] };
    });
  }
  if (options.vsock !== undefined) {
    const { cid, socket } = options.vsock;
    if (typeof socket !== 'string') throw new ConfigError('--vsock: socket must be a path, e.g. { cid: 3, socket: "/tmp/vm.vsock" }');
    config.vsock = { cid: wholeNumber('--vsock', cid), socket };
  }
  if (options.timeoutSeconds !== undefined) config.timeoutSeconds = parseTimeout(String(options.timeoutSeconds));
  if (options.trace !== undefined) {
    const { categories, file } = options.trace;
    if (!Array.isArray(categories)) throw new ConfigError('--trace: categories must be an array, e.g. { categories: ["vsock"] }');
    config.trace = parseTrace(categories.join(','), file);
  }
  return config;
}

/** `value` when it is a string or absent; a ConfigError naming `option` and what it must be otherwise. */
export function stringOption(option: string, value: unknown, what = 'a string'): string | undefined {
  if (value === undefined || typeof value === 'string') return value;
  throw new ConfigError(`${option}: must be ${what}, got ${typeof value}`);
}

function wholeNumber(option: string, value: unknown): number {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  throw new ConfigError(`${option}: must be a whole number, got ${JSON.stringify(value)}`);
}

function memoryBytes(memory: number | string | undefined): number {
  if (memory === undefined) return DEFAULT_MEMORY_BYTES;
  if (typeof memory === 'number') return wholeNumber('--memory', memory);
  if (typeof memory === 'string') return parseMemory(memory).sizeBytes;
  throw new ConfigError(`--memory: must be bytes or a size such as "512M", got ${typeof memory}`);
}

function charMode(option: string, value: CharOption): CharMode {
  if (value === 'pipe') return { kind: 'pipe' }; // The library's alone: the CLI has nobody to read a pipe.
  if (typeof value === 'object' && value !== null && typeof value.file === 'string') return parseCharMode(option, `file=${value.file}`);
  if (typeof value === 'string') return parseCharMode(option, value);
  throw new ConfigError(`${option}: must be 'pipe', 'tty', 'null', 'off' or { file: PATH }`);
}
