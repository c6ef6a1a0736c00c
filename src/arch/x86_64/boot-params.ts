// The "zero page": struct boot_params, the one page through which a boot
// loader hands the kernel its memory map, command line and initramfs
// (Documentation/arch/x86/zero-page.rst and boot.rst; layout in
// arch/x86/include/uapi/asm/bootparam.h). The 64-bit boot protocol asks for
// a page that is all zero except for the kernel's setup header (at 0x1f1)
// and the fields the loader fills; rsi points at it when the kernel starts.
import { hex } from '../../hex.js';
import { BootConfigError } from './errors.js';
import { E820_ENTRY_SIZE, E820_MAX_ENTRIES, type E820Entry } from './e820.js';
import {
  BOOT_FLAG_MAGIC, BOOT_PARAMS_HEADER_LIMIT, CAN_USE_HEAP, HDRS_MAGIC, LOADED_HIGH, SETUP_HEADER_START,
  SYNTHETIC_CMDLINE_SIZE, SYNTHETIC_INITRD_ADDR_MAX, SYNTHETIC_KERNEL_ALIGNMENT, SYNTHETIC_PROTOCOL_VERSION,
  SetupHeaderOffset as H,
} from './setup-header.js';

export const BOOT_PARAMS_SIZE = 0x1000;

/** Zero-page fields outside the setup header (zero-page.rst). */
export const ZeroPageOffset = {
  acpiRsdpAddr: 0x070, // u64: where the ACPI RSDP is, so the kernel need not scan for it
  extRamdiskImage: 0x0c0, // u32: ramdisk_image bits 63..32
  extRamdiskSize: 0x0c4, // u32: ramdisk_size bits 63..32
  extCmdLinePtr: 0x0c8, // u32: cmd_line_ptr bits 63..32
  e820Entries: 0x1e8, // u8: number of e820_table entries
  sentinel: 0x1ef, // u8: must stay 0, or the kernel assumes a sloppy loader and wipes fields
  e820Table: 0x2d0, // struct boot_e820_entry[128]
} as const;

/** The boot sector's "type_of_loader" for a loader without an assigned id (boot.rst). */
export const LOADER_TYPE_UNDEFINED = 0xff;
/**
 * heap_end_ptr as boot.rst's sample configuration computes it (heap end
 * 0xe000 minus 0x200). Only the real-mode setup code uses the heap, and the
 * 64-bit protocol skips it, but the field is marked obligatory.
 */
export const HEAP_END_PTR = 0xe000 - 0x200;
/** vid_mode "normal" (0xFFFF): no video mode switch (boot.rst, Special Command Line Options). */
export const VID_MODE_NORMAL = 0xffff;

export interface BootParamsOptions {
  /** A bzImage's own setup header bytes (from 0x1f1); omit for an ELF vmlinux and one is synthesized. */
  readonly setupHeader?: Uint8Array;
  /** Guest physical address of the NUL-terminated command line. */
  readonly cmdlineAddress: number;
  /** Where the initramfs was placed, if there is one. */
  readonly initramfs?: { readonly address: number; readonly size: number };
  /** The memory map, see e820Map(). */
  readonly e820: readonly E820Entry[];
  /** Guest physical address of the ACPI RSDP, when there are ACPI tables. */
  readonly acpiRsdpAddress?: number;
}

/** Builds the 4 KiB zero page; write it at ZERO_PAGE_START. */
export function buildBootParams(options: BootParamsOptions): Uint8Array {
  const page = new Uint8Array(BOOT_PARAMS_SIZE);
  const view = new DataView(page.buffer);
  if (options.setupHeader) {
    copySetupHeader(page, options.setupHeader);
  } else {
    writeSyntheticSetupHeader(view);
  }

  // Fields the loader must write (boot.rst: "write (obligatory)").
  view.setUint8(H.typeOfLoader, LOADER_TYPE_UNDEFINED);
  view.setUint8(H.loadflags, view.getUint8(H.loadflags) | LOADED_HIGH | CAN_USE_HEAP);
  view.setUint16(H.heapEndPtr, HEAP_END_PTR, true);
  view.setUint16(H.vidMode, VID_MODE_NORMAL, true);
  writeSplit64(view, H.cmdLinePtr, ZeroPageOffset.extCmdLinePtr, options.cmdlineAddress);
  // No initramfs: both stay zero, as boot.rst asks.
  if (options.initramfs) {
    writeSplit64(view, H.ramdiskImage, ZeroPageOffset.extRamdiskImage, options.initramfs.address);
    writeSplit64(view, H.ramdiskSize, ZeroPageOffset.extRamdiskSize, options.initramfs.size);
  }
  writeE820Table(view, options.e820);
  // No ACPI tables: zero, and a kernel with ACPI scans the BIOS area and finds none.
  if (options.acpiRsdpAddress !== undefined) {
    view.setBigUint64(ZeroPageOffset.acpiRsdpAddr, BigInt(options.acpiRsdpAddress), true);
  }
  return page;
}

/**
 * A bzImage's header goes in as is (boot.rst, 64-bit Boot Protocol: "the
 * setup header at offset 0x01f1 of kernel image on should be loaded into
 * struct boot_params"); the rest of the page stays zero, sentinel included.
 */
function copySetupHeader(page: Uint8Array, header: Uint8Array): void {
  if (SETUP_HEADER_START + header.byteLength > BOOT_PARAMS_HEADER_LIMIT) {
    throw new BootConfigError(`setup header of ${header.byteLength} bytes does not fit in boot_params`);
  }
  page.set(header, SETUP_HEADER_START);
}

/** An ELF vmlinux has no setup header: write the fields a bzImage would carry and the kernel reads. */
function writeSyntheticSetupHeader(view: DataView): void {
  view.setUint16(H.bootFlag, BOOT_FLAG_MAGIC, true);
  view.setUint32(H.header, HDRS_MAGIC, true);
  view.setUint16(H.version, SYNTHETIC_PROTOCOL_VERSION, true);
  view.setUint32(H.initrdAddrMax, SYNTHETIC_INITRD_ADDR_MAX, true);
  view.setUint32(H.kernelAlignment, SYNTHETIC_KERNEL_ALIGNMENT, true);
  view.setUint32(H.cmdlineSize, SYNTHETIC_CMDLINE_SIZE, true);
}

/** Fields that grew past 32 bits keep their low half in the header and the high half elsewhere. */
function writeSplit64(view: DataView, lowOffset: number, highOffset: number, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new BootConfigError(`invalid boot_params value ${value}`);
  view.setUint32(lowOffset, value % 0x1_0000_0000, true);
  view.setUint32(highOffset, Math.floor(value / 0x1_0000_0000), true);
}

function writeE820Table(view: DataView, entries: readonly E820Entry[]): void {
  if (entries.length > E820_MAX_ENTRIES) {
    throw new BootConfigError(`${entries.length} e820 entries do not fit in the zero page (max ${E820_MAX_ENTRIES})`);
  }
  view.setUint8(ZeroPageOffset.e820Entries, entries.length);
  entries.forEach((entry, i) => {
    const at = ZeroPageOffset.e820Table + i * E820_ENTRY_SIZE;
    if (entry.size <= 0) throw new BootConfigError(`e820 entry at ${hex(entry.address)} is empty`);
    view.setBigUint64(at, BigInt(entry.address), true);
    view.setBigUint64(at + 8, BigInt(entry.size), true);
    view.setUint32(at + 16, entry.type, true);
  });
}
