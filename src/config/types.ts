// The VM configuration tsvmm runs from: what `tsvmm --...` options (or a
// library caller) describe, already parsed and checked. vm.ts consumes it.

/** Where a character device (8250 serial, virtio-console) sends its output and gets its input. */
export type CharMode = { kind: 'tty' } | { kind: 'off' } | { kind: 'null' } | { kind: 'file'; path: string } | { kind: 'pipe' };

export interface DiskConfig {
  path: string;
  readonly: boolean;
  /** The virtio-blk serial the guest sees (/sys/block/vdX/serial); at most 20 bytes. */
  id?: string;
}

export interface VsockConfig {
  /** The guest's context ID (3 .. 0xFFFFFFFE). */
  cid: number;
  /** Host Unix socket: host->guest connections arrive here; guest->host ones go to `<socket>_<port>`. */
  socket: string;
}

export interface VmConfig {
  kernel: string;
  initramfs?: string;
  /** The user's part of the kernel command line (init arguments after ` -- `); the VMM adds its own. */
  cmdline: string;
  cpus: { boot: number };
  memory: { sizeBytes: number };
  serial: CharMode;
  console: CharMode;
  disks: DiskConfig[];
  vsock?: VsockConfig;
  /** Stop the VM after this many seconds (exit status 124, as timeout(1)). */
  timeoutSeconds?: number;
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
  override name = 'ConfigError';
}

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

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
