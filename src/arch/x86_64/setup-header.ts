// The Linux/x86 "setup header" (Documentation/arch/x86/boot.rst, "The
// Real-Mode Kernel Header"; struct setup_header in
// arch/x86/include/uapi/asm/bootparam.h). It sits at offset 0x1f1 both in a
// bzImage file and in struct boot_params, so one table of offsets serves the
// bzImage loader (reading) and the zero page builder (writing).

/** Offsets of setup header fields, from the start of the image / of boot_params. */
export const SetupHeaderOffset = {
  setupSects: 0x1f1, // u8: real-mode setup size in 512-byte sectors (0 means 4)
  vidMode: 0x1fa, // u16: video mode; 0xffff = "normal"
  bootFlag: 0x1fe, // u16: 0xAA55
  jump: 0x200, // u8 0xEB + u8 offset: the header ends at 0x202 + that offset
  header: 0x202, // u32: "HdrS"
  version: 0x206, // u16: boot protocol version, e.g. 0x020f for 2.15
  typeOfLoader: 0x210, // u8: 0xff = loader without an assigned id
  loadflags: 0x211, // u8: LOADED_HIGH, CAN_USE_HEAP, ...
  code32Start: 0x214, // u32
  ramdiskImage: 0x218, // u32: initramfs address (low 32 bits)
  ramdiskSize: 0x21c, // u32: initramfs size (low 32 bits)
  heapEndPtr: 0x224, // u16: end of the real-mode heap, minus 0x200
  cmdLinePtr: 0x228, // u32: command line address (low 32 bits)
  initrdAddrMax: 0x22c, // u32: highest byte address the initramfs may occupy
  kernelAlignment: 0x230, // u32
  relocatableKernel: 0x234, // u8
  minAlignment: 0x235, // u8: log2 of the minimum alignment
  xloadflags: 0x236, // u16: XLF_KERNEL_64, ...
  cmdlineSize: 0x238, // u32: max command line length, NUL excluded
  prefAddress: 0x258, // u64: preferred (for non-relocatable kernels: only) load address
  initSize: 0x260, // u32: memory the kernel needs from its runtime start before it reads the e820 map
} as const;

/** First byte of the setup header. */
export const SETUP_HEADER_START = 0x1f1;
/** ... and struct boot_params leaves room up to 0x290 (_pad7 ends there). */
export const BOOT_PARAMS_HEADER_LIMIT = 0x290;

export const BOOT_FLAG_MAGIC = 0xaa55;
/** "HdrS" read as a little-endian u32. */
export const HDRS_MAGIC = 0x53726448;

// loadflags (bootparam.h)
export const LOADED_HIGH = 1 << 0;
export const CAN_USE_HEAP = 1 << 7;
// xloadflags
export const XLF_KERNEL_64 = 1 << 0;

/** The header fields a loader reads, decoded. */
export interface SetupHeaderInfo {
  /** setup_sects: the real-mode setup's size in 512-byte sectors (the header's 0 already read as 4). */
  readonly setupSects: number;
  /** The boot protocol version, e.g. 0x020f for 2.15. */
  readonly version: number;
  /** loadflags: LOADED_HIGH, CAN_USE_HEAP, ... */
  readonly loadflags: number;
  /** initrd_addr_max: the highest byte address the initramfs may occupy. */
  readonly initrdAddrMax: number;
  /** kernel_alignment: the alignment a relocatable kernel needs, in bytes. */
  readonly kernelAlignment: number;
  /** relocatable_kernel: whether the kernel may run elsewhere than at prefAddress. */
  readonly relocatable: boolean;
  /** xloadflags: XLF_KERNEL_64, XLF_CAN_BE_LOADED_ABOVE_4G, ... */
  readonly xloadflags: number;
  /** cmdline_size: the longest command line the kernel takes, in bytes, NUL excluded. */
  readonly cmdlineSize: number;
  /** pref_address: the preferred load address (the only one, for a kernel that is not relocatable). */
  readonly prefAddress: bigint;
  /** init_size: the memory the kernel needs from its runtime start before it reads the e820 map, in bytes. */
  readonly initSize: number;
}

/**
 * Decodes the fields tsvmm needs from `bytes`, which holds the setup header
 * at its usual offsets (a bzImage's first sectors, or a boot_params page).
 * The caller has checked the "HdrS" magic and that `bytes` is long enough.
 */
export function readSetupHeader(bytes: Uint8Array): SetupHeaderInfo {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const o = SetupHeaderOffset;
  const setupSects = view.getUint8(o.setupSects);
  return {
    setupSects: setupSects === 0 ? 4 : setupSects,
    version: view.getUint16(o.version, true),
    loadflags: view.getUint8(o.loadflags),
    initrdAddrMax: view.getUint32(o.initrdAddrMax, true),
    kernelAlignment: view.getUint32(o.kernelAlignment, true),
    relocatable: view.getUint8(o.relocatableKernel) !== 0,
    xloadflags: view.getUint16(o.xloadflags, true),
    cmdlineSize: view.getUint32(o.cmdlineSize, true),
    prefAddress: view.getBigUint64(o.prefAddress, true),
    initSize: view.getUint32(o.initSize, true),
  };
}

// Values tsvmm puts in the header it synthesizes for an ELF vmlinux, which
// has no setup header of its own.
/** Newest protocol at the time of writing (2.15); the kernel proper only checks the magic. */
export const SYNTHETIC_PROTOCOL_VERSION = 0x020f;
/** x86's COMMAND_LINE_SIZE is 2048 bytes NUL included, so 2047 characters (what bzImages report). */
export const SYNTHETIC_CMDLINE_SIZE = 2047;
/** x86_64 bzImages report 0x7fffffff (arch/x86/boot/header.S): the initramfs must end below 2 GiB. */
export const SYNTHETIC_INITRD_ADDR_MAX = 0x7fff_ffff;
/** Informational only for a vmlinux (it is not relocated): the usual CONFIG_PHYSICAL_ALIGN of 2 MiB. */
export const SYNTHETIC_KERNEL_ALIGNMENT = 0x20_0000;
