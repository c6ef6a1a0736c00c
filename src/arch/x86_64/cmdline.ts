// The kernel command line: what the user asked for plus what the VMM must
// tell the kernel (where the serial console and the virtio-mmio devices are).
// The kernel stops parsing its own parameters at "--" and hands everything
// after it to init (Documentation/admin-guide/kernel-parameters.rst), so VMM
// parameters always go before that separator.
import { KiB } from '../../units.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import { BootConfigError } from './errors.js';
import { CMDLINE_MAX_SIZE, CMDLINE_START, type VirtioMmioSlot } from './layout.js';
import { SYNTHETIC_CMDLINE_SIZE, type SetupHeaderInfo } from './setup-header.js';

/**
 * Sensible defaults: serial console; reset through the i8042 to stop the VM;
 * on a panic, reset at once (panic=-1) with the warm-reboot flag set, which
 * is how tsvmm tells a panic from a clean reset (src/vm/guest-panic.ts).
 */
export const DEFAULT_KERNEL_PARAMS: readonly string[] = ['console=ttyS0', 'reboot=k,panic_warm', 'panic=-1'];

export interface VmmKernelParams {
  /**
   * Placed first, so the user can override them: for most parameters the
   * last occurrence wins (and for console=, the last one is /dev/console).
   */
  readonly defaults?: readonly string[];
  /** Placed after the user's parameters, so they cannot be lost: device announcements. */
  readonly required?: readonly string[];
}

/** `virtio_mmio.device=<size>@<base>:<irq>` (drivers/virtio/virtio_mmio.c, VIRTIO_MMIO_CMDLINE_DEVICES). */
export function virtioMmioParam(slot: VirtioMmioSlot): string {
  const size = slot.size % KiB === 0 ? `${slot.size / KiB}K` : `${slot.size}`;
  return `virtio_mmio.device=${size}@0x${slot.base.toString(16)}:${slot.irq}`;
}

/**
 * defaults, then the user's kernel parameters, then required, then "--"
 * and the user's init arguments (only if the user wrote a "--").
 */
export function buildCmdline(user: string, vmm: VmmKernelParams = {}): string {
  const words = splitWords(user);
  const separator = words.indexOf('--');
  const kernelWords = separator < 0 ? words : words.slice(0, separator);
  const initWords = separator < 0 ? [] : words.slice(separator);
  return [...(vmm.defaults ?? []), ...kernelWords, ...(vmm.required ?? []), ...initWords].join(' ');
}

/**
 * Splits on whitespace like the kernel's next_arg() (lib/cmdline.c): a
 * double-quoted value may contain spaces, so `init="/bin/sh -- x"` stays one word.
 */
function splitWords(cmdline: string): string[] {
  const words: string[] = [];
  let current = '';
  let inQuote = false;
  for (const ch of cmdline) {
    if (ch === '"') inQuote = !inQuote;
    if (!inQuote && /\s/.test(ch)) {
      if (current !== '') words.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  if (current !== '') words.push(current);
  return words;
}

/**
 * The longest command line the kernel accepts, NUL excluded: the bzImage's
 * cmdline_size, or x86's 2047 for a vmlinux (which has no header to ask).
 */
export function maxCmdlineLength(header?: SetupHeaderInfo): number {
  const kernelLimit = header ? header.cmdlineSize : SYNTHETIC_CMDLINE_SIZE;
  return Math.min(kernelLimit, CMDLINE_MAX_SIZE - 1);
}

/** The command line as the kernel reads it: bytes, NUL-terminated; throws if too long. */
export function encodeCmdline(cmdline: string, maxLength: number): Uint8Array {
  if (cmdline.includes('\0')) throw new BootConfigError('kernel command line contains a NUL character');
  const text = new TextEncoder().encode(cmdline);
  if (text.byteLength > maxLength) {
    throw new BootConfigError(
      `kernel command line is ${text.byteLength} bytes, but this kernel accepts at most ${maxLength} ` +
        '(cmdline_size): shorten --cmdline or attach fewer devices');
  }
  const bytes = new Uint8Array(text.byteLength + 1);
  bytes.set(text);
  return bytes;
}

/** Writes the NUL-terminated command line at CMDLINE_START and returns that address. */
export function writeCmdline(memory: GuestMemory, cmdline: string, maxLength: number): number {
  memory.write(CMDLINE_START, encodeCmdline(cmdline, maxLength));
  return CMDLINE_START;
}
