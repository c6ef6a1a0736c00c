// The VM configuration: from the option strings of the command line (or a
// library caller) to a checked VmConfig. The pieces live in config/:
//   types.ts      VmConfig and friends, ConfigError, limits
//   key-value.ts  Cloud Hypervisor style `key=value,key=value` lists
//   values.ts     numbers, sizes (512M), on/off
//   options.ts    one parser per option (syntax only)
//   cpu-affinity.ts  `--cpus affinity=[0@[0-1]]`: parsed and checked
//   validate.ts   ranges, reserved values, conflicts, file checks
//   files.ts      file-system checks and where the default guest lives
import { existsSync } from 'node:fs';
import { defaultGuestImages, packageRoot } from './config/files.js';
import { parseCharMode, parseCpus, parseDisk, parseMemory, parseTimeout, parseTrace, parseVsock } from './config/options.js';
import { ConfigError, DEFAULT_CPUS, DEFAULT_MEMORY_BYTES, type CharMode, type VmConfig } from './config/types.js';
import { settingsFromStartOptions, stringOption, type VmStartOptions } from './config/start-options.js';
import { validateGuestImages, validateSettings } from './config/validate.js';

export * from './config/types.js';
export { validateVmConfig } from './config/validate.js';
export { defaultGuestImages, packageRoot } from './config/files.js';
export { formatSize } from './config/values.js';
export type { CharOption, DiskOption, VmStartOptions } from './config/start-options.js';

/** Each option as the user typed it; repeatable options are arrays (one entry per occurrence). */
export interface VmOptionStrings {
  /** `--kernel PATH`: an ELF vmlinux or a bzImage. Default: the default guest's kernel. */
  kernel?: string;
  /** `--initramfs PATH`. Default: the default guest's when no kernel is given, else none. */
  initramfs?: string;
  /** `--cmdline STRING`: the user's part of the kernel command line (init's arguments after ` -- `). */
  cmdline?: string;
  /** `--cpus boot=N` (or `N`). Default 1. */
  cpus?: string;
  /** `--memory size=N[K|M|G]` (or `N[K|M|G]`). Default 512M. */
  memory?: string;
  /** `--serial tty|off|null|file=PATH`. Default tty. */
  serial?: string;
  /** `--console tty|off|null|file=PATH` (virtio-console). Default off. */
  console?: string;
  /** `--disk path=PATH[,readonly=on|off][,id=NAME]`, one entry per disk. */
  disk?: string[];
  /** `--vsock cid=N,socket=PATH`; at most one entry (a VM has at most one vsock device). */
  vsock?: string[];
  /** `--timeout SECONDS`. */
  timeout?: string;
  /** `--trace LIST`: comma-separated categories of src/trace.ts, or `all`. */
  trace?: string;
  /** `--trace-file PATH`: where the trace goes instead of stderr. */
  traceFile?: string;
  /** `--boot-timer`. */
  bootTimer?: boolean;
}

/** What configFromOptions() and configFromStartOptions() need besides the options. */
export interface ConfigContext {
  /** Where guest-images/out/ is looked for when no --kernel is given (default: this package). */
  packageRoot?: string;
}

/**
 * Parses and validates the options. Defaults: 1 vCPU, 512M, serial on the
 * terminal, no virtio-console, and the default guest from `npm run images`.
 */
export function configFromOptions(options: VmOptionStrings, context: ConfigContext = {}): VmConfig {
  const vsocks = options.vsock ?? [];
  if (vsocks.length > 1) {
    throw new ConfigError(`--vsock: given ${vsocks.length} times; a VM has at most one vsock device`);
  }
  // Syntax first, in the order of the help text, then what the values mean.
  const cpus = options.cpus === undefined ? { boot: DEFAULT_CPUS } : parseCpus(options.cpus);
  const memory = options.memory === undefined ? { sizeBytes: DEFAULT_MEMORY_BYTES } : parseMemory(options.memory);
  const serial: CharMode = options.serial === undefined ? { kind: 'tty' } : parseCharMode('--serial', options.serial);
  const console: CharMode = options.console === undefined ? { kind: 'off' } : parseCharMode('--console', options.console);
  const disks = (options.disk ?? []).map(parseDisk);
  const vsock = vsocks[0] === undefined ? undefined : parseVsock(vsocks[0]);
  const settings: Omit<VmConfig, 'kernel' | 'initramfs'> = { cmdline: options.cmdline ?? '', cpus, memory, serial, console, disks };
  if (vsock) settings.vsock = vsock;
  if (options.timeout !== undefined) settings.timeoutSeconds = parseTimeout(options.timeout);
  if (options.bootTimer) settings.bootTimer = true;
  if (options.trace !== undefined || options.traceFile !== undefined) settings.trace = parseTrace(options.trace, options.traceFile);
  return withGuestImages(settings, options, context);
}

/**
 * Vm.start()'s typed options (src/config/start-options.ts) as a checked
 * VmConfig, with the same defaults as the CLI but for the serial port,
 * which the library leaves silent ('null') unless asked.
 */
export function configFromStartOptions(options: VmStartOptions, context: ConfigContext = {}): VmConfig {
  const settings = settingsFromStartOptions(options);
  return withGuestImages(settings, {
    kernel: stringOption('--kernel', options.kernel, 'a path'), initramfs: stringOption('--initramfs', options.initramfs, 'a path'),
  }, context);
}

/**
 * Adds the guest images (the user's or the default guest's) and checks the
 * whole: the settings first, the images last, so that a typo is reported
 * before a missing default guest.
 */
function withGuestImages(
  settings: Omit<VmConfig, 'kernel' | 'initramfs'>, options: Pick<VmOptionStrings, 'kernel' | 'initramfs'>, context: ConfigContext,
): VmConfig {
  const images = guestImages(options, context.packageRoot ?? packageRoot());
  const config: VmConfig = { ...settings, kernel: images.kernel };
  if (images.initramfs !== undefined) config.initramfs = images.initramfs;
  validateSettings(config);
  for (const [what, path] of images.defaults) {
    if (!existsSync(path)) {
      throw new ConfigError(`no --kernel given and the default guest ${what} ${path} is missing: run "npm run images" to build it, or pass --kernel PATH`);
    }
  }
  validateGuestImages(config);
  return config;
}

interface GuestImages {
  kernel: string;
  initramfs?: string;
  /** The paths that are defaults rather than the user's: [what, path]. */
  defaults: [string, string][];
}

/**
 * --kernel and --initramfs, or the default guest. With no --kernel, the
 * default kernel is used, and the default initramfs too unless --initramfs
 * names another; a --kernel of the user's own comes with no default initramfs.
 */
function guestImages(options: Pick<VmOptionStrings, 'kernel' | 'initramfs'>, root: string): GuestImages {
  if (options.kernel !== undefined) {
    return { kernel: options.kernel, initramfs: options.initramfs, defaults: [] };
  }
  const standard = defaultGuestImages(root);
  if (options.initramfs !== undefined) {
    return { kernel: standard.kernel, initramfs: options.initramfs, defaults: [['kernel', standard.kernel]] };
  }
  return { ...standard, defaults: [['kernel', standard.kernel], ['initramfs', standard.initramfs]] };
}
