// The e820 memory map: how a PC BIOS tells the OS which physical ranges are
// RAM. Without a BIOS, the VMM writes it into the zero page
// (boot_params.e820_table at 0x2d0, count at 0x1e8; zero-page.rst) and the
// kernel prints it at boot as "BIOS-provided physical RAM map".
import { BootConfigError } from './errors.js';
import { HIMEM_START, MPTABLE_START, ramRegions } from './layout.js';

// Entry types (arch/x86/include/uapi/asm/e820.h).
export const E820_RAM = 1;
export const E820_RESERVED = 2;

/** One range of the e820 memory map. */
export interface E820Entry {
  /** Guest physical address of its first byte. */
  readonly address: number;
  /** Its length in bytes. */
  readonly size: number;
  /** E820_RAM (1, usable) or E820_RESERVED (2). */
  readonly type: number;
}

/** Room in the zero page (E820_MAX_ENTRIES_ZEROPAGE in bootparam.h). */
export const E820_MAX_ENTRIES = 128;
/** struct boot_e820_entry: u64 addr, u64 size, u32 type, packed. */
export const E820_ENTRY_SIZE = 20;

/**
 * The map for a VM with `ramSizeBytes` of RAM laid out by ramRegions():
 *   [0, 0x9fc00)            usable  conventional memory
 *   [0x9fc00, 1 MiB)        reserved  MP table (in the EBDA spot), then the
 *                                     legacy VGA/ROM hole, as on a real PC
 *   [1 MiB, low RAM end)    usable  kernel, initramfs, everything else
 *   [4 GiB, ...)            usable  RAM that would have fallen in the MMIO gap
 */
export function e820Map(ramSizeBytes: number): E820Entry[] {
  const [low, high] = ramRegions(ramSizeBytes);
  if (low === undefined || low.size <= HIMEM_START) {
    throw new BootConfigError('guest RAM must extend above 1 MiB');
  }
  const entries: E820Entry[] = [
    { address: 0, size: MPTABLE_START, type: E820_RAM },
    { address: MPTABLE_START, size: HIMEM_START - MPTABLE_START, type: E820_RESERVED },
    { address: HIMEM_START, size: low.size - HIMEM_START, type: E820_RAM },
  ];
  if (high !== undefined) entries.push({ address: high.guestAddress, size: high.size, type: E820_RAM });
  return entries;
}

/** The map the way Linux prints it, e.g. "BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable". */
export function formatE820(entries: readonly E820Entry[]): string[] {
  const pad = (n: number) => `0x${n.toString(16).padStart(16, '0')}`;
  return entries.map((e) =>
    `BIOS-e820: [mem ${pad(e.address)}-${pad(e.address + e.size - 1)}] ${e.type === E820_RAM ? 'usable' : 'reserved'}`);
}
