// Where the initramfs goes. Boot loaders put it as high as they may (boot.rst,
// initrd_addr_max) so that it stays clear of the kernel, which decompresses
// and grows upwards from its load address; Linux frees its pages after
// unpacking it.
import { MiB } from '../../units.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import { hex } from '../../hex.js';
import { BootConfigError } from './errors.js';
import type { ImageSource } from './image-source.js';
import { PAGE_SIZE, alignDown, alignUp } from './layout.js';

export interface InitramfsPlacementInput {
  /** Size of the initramfs in bytes. */
  readonly size: number;
  /** First address the kernel leaves free (LoadedKernel.kernelEnd). */
  readonly kernelEnd: number;
  /** Highest byte address allowed (setup header initrd_addr_max; inclusive, as boot.rst defines it). */
  readonly initrdAddrMax: number;
  /** End (exclusive) of RAM below the MMIO gap (layout lowRamEnd()). */
  readonly lowRamEnd: number;
}

/** Page-aligned guest address for the initramfs: as high as possible, above the kernel. */
export function placeInitramfs(input: InitramfsPlacementInput): number {
  if (!Number.isSafeInteger(input.size) || input.size <= 0) {
    throw new BootConfigError(`initramfs is empty (${input.size} bytes): pass a cpio archive, or no --initramfs`);
  }
  const ceiling = Math.min(input.lowRamEnd, input.initrdAddrMax + 1);
  const floor = alignUp(input.kernelEnd, PAGE_SIZE);
  const address = alignDown(ceiling - input.size, PAGE_SIZE);
  if (address < floor) {
    throw new BootConfigError(
      `initramfs of ${(input.size / MiB).toFixed(1)} MiB does not fit between the kernel's end ` +
        `(${hex(floor)}) and ${hex(ceiling)}: give the VM more memory (--memory size=...)`);
  }
  return address;
}

/** Places `source` with placeInitramfs() (its size decides where) and reads it straight there; returns where it went. */
export function loadInitramfs(
  memory: GuestMemory,
  source: ImageSource,
  limits: Omit<InitramfsPlacementInput, 'size'>,
): { address: number; size: number } {
  const address = placeInitramfs({ ...limits, size: source.size });
  source.readInto(memory.slice(address, source.size), 0);
  return { address, size: source.size };
}
