// The VM configuration tsvmm runs from: what `tsvmm --...` options (or a
// library caller) describe, already parsed and checked. vm.ts consumes it.
import type { TraceConfig } from '../trace.js';
import { GiB, KiB, MiB } from '../units.js';

/** Where a character device (8250 serial, virtio-console) sends its output and gets its input. */
export type CharMode =
  | {
    /** `tty`: output to this process's stdout, input from its stdin (a terminal is put in raw mode). */
    kind: 'tty';
  }
  | {
    /** `off`: no device at all. */
    kind: 'off';
  }
  | {
    /** `null`: the device exists; its output is discarded and it gets no input. */
    kind: 'null';
  }
  | {
    /** `file=PATH`: output to a file, created or truncated; no input. */
    kind: 'file';
    /** The output file (PATH). */
    path: string;
  }
  | {
    /** The library's alone: a stream on the VM (`vm.serial`, `vm.console`) that the caller reads and writes. */
    kind: 'pipe';
  };

/** A virtio-blk disk (the CLI's `--disk path=PATH,readonly=on|off,id=NAME`): the guest sees it as /dev/vdX. */
export interface DiskConfig {
  /** The raw image file (`path=`). */
  path: string;
  /**
   * `readonly=on`: the guest cannot write to the image; other VMs may read it
   * at the same time, none may write it. False (the CLI's default,
   * `readonly=off`): the guest may write, and no other VM may open the image
   * meanwhile (it is locked).
   */
  readonly: boolean;
  /** The virtio-blk serial the guest sees (/sys/block/vdX/serial); at most 20 bytes. */
  id?: string;
}

/** The virtio-vsock device (the CLI's `--vsock cid=N,socket=PATH`), reached from the host through Unix sockets. */
export interface VsockConfig {
  /** The guest's context ID (3 .. 0xFFFFFFFE). */
  cid: number;
  /** Host Unix socket: host->guest connections arrive here; guest->host ones go to `<socket>_<port>`. */
  socket: string;
}

/** The host CPUs one vCPU's thread may run on (`--cpus affinity=[0@[0-1]]`). */
export interface VcpuAffinity {
  /** The vCPU, 0 to boot - 1. */
  vcpu: number;
  /** Host CPU numbers, as in /proc/cpuinfo and taskset(1). */
  hostCpus: number[];
}

/**
 * A VM's configuration, parsed and checked: what configFromOptions() (the
 * CLI's option strings) and configFromStartOptions() (Vm.start()'s options)
 * return, and Vm.startFromConfig() runs. One built by hand is checked with
 * validateVmConfig().
 */
export interface VmConfig {
  /** The guest kernel, an ELF vmlinux or a bzImage (`--kernel`); with none given, the default guest's. */
  kernel: string;
  /** The initramfs (`--initramfs`); undefined when the guest has none. */
  initramfs?: string;
  /** The user's part of the kernel command line (init arguments after ` -- `); the VMM adds its own. */
  cmdline: string;
  /** The vCPUs (`--cpus boot=N[,affinity=[VCPU@[HOST CPUS],...]]`). */
  cpus: {
    /** How many vCPUs the guest boots with: 1 to 32 (default 1). */
    boot: number;
    /** Host CPUs a vCPU's thread may run on; a vCPU not listed runs anywhere (src/config/cpu-affinity.ts). */
    affinity?: VcpuAffinity[];
  };
  /** Guest RAM (`--memory size=N[K|M|G]`). */
  memory: {
    /** In bytes: a whole number of 4 KiB pages, from 64 MiB to 64 GiB (default 512 MiB). */
    sizeBytes: number;
  };
  /** The 8250 serial port, the guest's ttyS0 (`--serial`). The CLI's default is tty, the library's null. */
  serial: CharMode;
  /** The virtio-console, the guest's hvc0 (`--console`). Default off: no device. */
  console: CharMode;
  /** The virtio-blk disks, one per `--disk`, in the order given; empty for none. */
  disks: DiskConfig[];
  /** The virtio-vsock device (`--vsock`); undefined when the VM has none. */
  vsock?: VsockConfig;
  /** Stop the VM after this many seconds (exit status 124, as timeout(1)). */
  timeoutSeconds?: number;
  /** `--trace` / `--trace-file`: what to trace, and where (src/trace.ts). */
  trace?: TraceConfig;
  /** Print the boot timer's figures on stderr (the CLI's --boot-timer). */
  bootTimer?: boolean;
}

/**
 * A mistake in the configuration the user gave. The message is one line, meant to be shown as is.
 * Every error that reports something the user can fix extends it (the subclasses
 * name what failed: the kernel image, /dev/kvm, a disk, ...), so the CLI and
 * library callers need one `instanceof ConfigError` (test/unit/errors.test.ts
 * checks that no such class extends Error directly).
 */
export class ConfigError extends Error {
  // Not readonly: subclasses set their own name in their constructors.
  /** 'ConfigError', or the name of the subclass thrown (e.g. 'VsockListenError'): each subclass sets its own. */
  override name = 'ConfigError';
}

export { GiB, KiB, MiB } from '../units.js';

export const DEFAULT_CPUS = 1;
/** The guest kernel is built with CONFIG_NR_CPUS=32 (guest-images/kernel/guest.config). */
export const MAX_CPUS = 32;
export const DEFAULT_MEMORY_BYTES = 512 * MiB;
/** The kernel, the unpacked default initramfs and busybox need room to breathe. */
export const MIN_MEMORY_BYTES = 64 * MiB;
export const MAX_MEMORY_BYTES = 64 * GiB;
/** Guest RAM is mapped in whole pages. */
export const MEMORY_ALIGNMENT = 4 * KiB;
/** virtio-blk's VIRTIO_BLK_ID_BYTES (virtio spec 5.2.6). */
export const MAX_DISK_ID_BYTES = 20;
/** x86 COMMAND_LINE_SIZE is 2048 bytes including the terminating NUL. */
export const MAX_CMDLINE_BYTES = 2047;
/** sun_path is 108 bytes including the terminating NUL (unix(7)). */
export const MAX_UNIX_SOCKET_PATH_BYTES = 107;
