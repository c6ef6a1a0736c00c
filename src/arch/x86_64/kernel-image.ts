// Loads whichever kind of kernel the user gave: the format is read from the
// file's first bytes, never guessed from its name (a "vmlinuz" is a bzImage,
// a "kernel" could be anything).
import type { GuestMemory } from '../../memory/guest-memory.js';
import { loadBzImage, isBzImage } from './bzimage-loader.js';
import { loadElfKernel, isElf } from './elf-loader.js';
import { KernelImageError } from './errors.js';
import { readHead, type ImageSource } from './image-source.js';
import type { SetupHeaderInfo } from './setup-header.js';

/** A kernel image read into guest memory. */
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
 * Reads `source` into guest memory as an ELF vmlinux or a bzImage: its
 * first bytes, then only what goes into guest RAM.
 * `name` (usually the file path) only appears in error messages.
 */
export function loadKernelImage(memory: GuestMemory, source: ImageSource, name = 'kernel image'): LoadedKernel {
  const head = readHead(source);
  try {
    if (isElf(head)) return { format: 'elf', ...loadElfKernel(memory, source, head) };
    if (isBzImage(head)) return { format: 'bzImage', ...loadBzImage(memory, source, head) };
  } catch (error) {
    if (error instanceof KernelImageError) throw new KernelImageError(`${name}: ${error.message}`);
    throw error;
  }
  throw new KernelImageError(
    `${name} is neither an ELF vmlinux nor a bzImage (no \\x7fELF magic, no "HdrS" header at 0x202): ` +
      'pass the kernel build\'s vmlinux or arch/x86/boot/bzImage');
}
