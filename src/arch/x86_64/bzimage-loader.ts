// Loads a bzImage (the compressed, self-extracting kernel `make bzImage`
// produces) for the 64-bit boot protocol (Documentation/arch/x86/boot.rst):
// the real-mode part (boot sector + setup, setup_sects + 1 sectors) is NOT
// run, nor read past its setup header, which is kept for boot_params. The
// protected-mode part that follows it is read straight to 1 MiB, and the
// 64-bit entry point is 0x200 past it.
import type { GuestMemory } from '../../memory/guest-memory.js';
import { hex } from '../../hex.js';
import { KernelImageError } from './errors.js';
import { readHead, type ImageSource } from './image-source.js';
import { BZIMAGE_LOAD_ADDRESS, alignUp } from './layout.js';
import {
  BOOT_FLAG_MAGIC, HDRS_MAGIC, LOADED_HIGH, SETUP_HEADER_START, SetupHeaderOffset, XLF_KERNEL_64,
  readSetupHeader, type SetupHeaderInfo,
} from './setup-header.js';

/** Boot protocol 2.12 added xloadflags, and with it XLF_KERNEL_64: the only way to know the 64-bit entry exists. */
export const MIN_BOOT_PROTOCOL = 0x020c;
/** Offset of the 64-bit entry point from the start of the protected-mode kernel (boot.rst, 64-bit Boot Protocol). */
export const ENTRY_64_OFFSET = 0x200;
const SECTOR_SIZE = 512;

export interface LoadedBzImage {
  /** Guest physical address of the 64-bit entry point: load address + 0x200. */
  readonly entry: number;
  /** Where the protected-mode kernel was copied (1 MiB). */
  readonly kernelStart: number;
  /**
   * First address after the memory the kernel needs before it reads the
   * e820 map: the copied image, and the window [runtime start, + init_size)
   * where it decompresses itself. Nothing else may be placed below this.
   */
  readonly kernelEnd: number;
  /** Setup header bytes from offset 0x1f1 up to 0x202 + byte[0x201], to copy into boot_params at 0x1f1. */
  readonly setupHeader: Uint8Array;
  /** Decoded setup header fields. */
  readonly header: SetupHeaderInfo;
}

/** True when `head` (a file's first bytes) carries the 0xAA55 boot flag and "HdrS" magic of a Linux x86 boot image. */
export function isBzImage(head: Uint8Array): boolean {
  if (head.byteLength < SetupHeaderOffset.header + 4) return false;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  return view.getUint16(SetupHeaderOffset.bootFlag, true) === BOOT_FLAG_MAGIC
    && view.getUint32(SetupHeaderOffset.header, true) === HDRS_MAGIC;
}

/** `head` is the file's first bytes (readHead()), when the caller has them already. */
export function loadBzImage(memory: GuestMemory, source: ImageSource, head = readHead(source)): LoadedBzImage {
  if (!isBzImage(head)) throw new KernelImageError('not a bzImage (no 0xAA55 boot flag and "HdrS" magic at 0x1fe/0x202)');
  const setupHeader = copySetupHeader(head);
  // readSetupHeader() reads up to init_size (0x260 + 4), even from an older, shorter header: a file ending before is no kernel.
  if (head.byteLength < SetupHeaderOffset.initSize + 4) {
    throw new KernelImageError(`bzImage is truncated inside its setup header (${head.byteLength} bytes)`);
  }
  const header = readSetupHeader(head);
  checkProtocol(header);

  const setupBytes = (header.setupSects + 1) * SECTOR_SIZE;
  if (source.size <= setupBytes) {
    throw new KernelImageError(`bzImage is truncated: ${source.size} bytes, but its setup code alone takes ${setupBytes}`);
  }
  const protectedModeSize = source.size - setupBytes;
  const loadEnd = BZIMAGE_LOAD_ADDRESS + protectedModeSize;
  const initEnd = runtimeStart(header) + header.initSize;
  const kernelEnd = Math.max(loadEnd, initEnd);
  if (!memory.contains(BZIMAGE_LOAD_ADDRESS, kernelEnd - BZIMAGE_LOAD_ADDRESS)) {
    throw new KernelImageError(
      `bzImage needs guest RAM up to ${hex(kernelEnd)} (image ${protectedModeSize} bytes at ` +
        `${hex(BZIMAGE_LOAD_ADDRESS)}, init_size ${hex(header.initSize)}): give the VM more memory`);
  }
  source.readInto(memory.slice(BZIMAGE_LOAD_ADDRESS, protectedModeSize), setupBytes);
  return { entry: BZIMAGE_LOAD_ADDRESS + ENTRY_64_OFFSET, kernelStart: BZIMAGE_LOAD_ADDRESS, kernelEnd, setupHeader, header };
}

function copySetupHeader(head: Uint8Array): Uint8Array {
  const jumpOffset = head[SetupHeaderOffset.jump + 1]!;
  // The jump is a short jmp (0xEB, signed 8-bit offset) over the header.
  if (head[SetupHeaderOffset.jump] !== 0xeb || jumpOffset >= 0x80) {
    throw new KernelImageError(`bzImage setup header has no forward short jump at 0x200 (bytes ${hex(head[0x200]!)} ${hex(jumpOffset)}): file is corrupt`);
  }
  const end = 0x202 + jumpOffset;
  // The head holds the first 1 KiB, more than any header (< 0x282): shorter, it is the whole file.
  if (head.byteLength < end) throw new KernelImageError(`bzImage is truncated inside its setup header (${head.byteLength} bytes)`);
  return head.slice(SETUP_HEADER_START, end);
}

function checkProtocol(header: SetupHeaderInfo): void {
  const version = `${header.version >> 8}.${(header.version & 0xff).toString().padStart(2, '0')}`;
  if (header.version < MIN_BOOT_PROTOCOL) {
    throw new KernelImageError(`bzImage speaks boot protocol ${version}; the 64-bit entry needs 2.12 or newer (Linux 3.8+)`);
  }
  if ((header.xloadflags & XLF_KERNEL_64) === 0) {
    throw new KernelImageError('bzImage has no 64-bit entry point (XLF_KERNEL_64 clear in xloadflags): is it a 32-bit kernel? Build it for x86_64');
  }
  if ((header.loadflags & LOADED_HIGH) === 0) {
    throw new KernelImageError('kernel image is a zImage (LOADED_HIGH clear): it must be loaded below 1 MiB, which tsvmm does not support; build a bzImage');
  }
}

/**
 * Where the kernel will run from while it decompresses itself, per the
 * algorithm in boot.rst (init_size): a relocatable kernel loaded below
 * pref_address moves up to it; a non-relocatable one always runs at
 * pref_address.
 */
function runtimeStart(header: SetupHeaderInfo): number {
  const pref = header.prefAddress > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(header.prefAddress);
  if (!header.relocatable) return pref;
  const start = Math.max(BZIMAGE_LOAD_ADDRESS, pref);
  return header.kernelAlignment > 0 ? alignUp(start, header.kernelAlignment) : start;
}
