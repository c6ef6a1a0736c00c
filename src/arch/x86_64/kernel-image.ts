// Loads whichever kind of kernel the user gave: the format is read from the
// file's first bytes, never guessed from its name (a "vmlinuz" is a bzImage,
// a "kernel" could be anything).
import type { GuestMemory } from '../../memory/guest-memory.js';
import { loadBzImage, isBzImage } from './bzimage-loader.js';
import { loadElfKernel, isElf } from './elf-loader.js';
import { KernelImageError } from './errors.js';
import type { SetupHeaderInfo } from './setup-header.js';

/** A kernel image copied into guest memory. */
export interface LoadedKernel {
  /** What the image was: an ELF vmlinux or a bzImage. */
  readonly format: 'elf' | 'bzImage';
  /** Guest physical address of the 64-bit entry point: the vCPU's initial rip. */
  readonly entry: number;
  /** Lowest guest physical address the kernel occupies. */
  readonly kernelStart: number;
  /** First guest physical address the kernel leaves free (nothing may be placed in [kernelStart, kernelEnd)). */
  readonly kernelEnd: number;
  /** bzImage only: its setup header bytes (from 0x1f1), the start of boot_params' `hdr`. */
  readonly setupHeader?: Uint8Array;
  /** bzImage only: its decoded setup header. */
  readonly header?: SetupHeaderInfo;
}

/**
 * Copies `image` into guest memory as an ELF vmlinux or a bzImage.
 * `name` (usually the file path) only appears in error messages.
 */
export function loadKernelImage(memory: GuestMemory, image: Uint8Array, name = 'kernel image'): LoadedKernel {
  try {
    if (isElf(image)) return { format: 'elf', ...loadElfKernel(memory, image) };
    if (isBzImage(image)) return { format: 'bzImage', ...loadBzImage(memory, image) };
  } catch (error) {
    if (error instanceof KernelImageError) throw new KernelImageError(`${name}: ${error.message}`);
    throw error;
  }
  throw new KernelImageError(
    `${name} is neither an ELF vmlinux nor a bzImage (no \\x7fELF magic, no "HdrS" header at 0x202): ` +
      'pass the kernel build\'s vmlinux or arch/x86/boot/bzImage');
}
