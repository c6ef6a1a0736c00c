// Identity-mapped page tables for entering the kernel in long mode. Long mode
// cannot run without paging, and the 64-bit boot protocol (boot.rst) asks
// that the kernel, the zero page and the command line be identity mapped
// (virtual address = physical address). Linux builds its own tables almost
// at once, so the simplest map does: one PML4 entry -> one PDPT with four
// entries -> four page directories of 512 x 2 MiB pages = the first 4 GiB,
// which covers all low RAM wherever the kernel and initramfs landed.
// Entry format: Intel SDM vol. 3, 4.5 "4-Level Paging".
import { MiB } from '../../units.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import { PAGE_SIZE, PD_COUNT, PD_START, PDPT_START, PML4_START } from './layout.js';

const PRESENT = 1n << 0n;
const WRITABLE = 1n << 1n;
/** In a page-directory entry: maps a 2 MiB page instead of pointing at a page table. */
const PAGE_SIZE_2M = 1n << 7n;

const ENTRIES_PER_TABLE = 512;
const HUGE_PAGE_SIZE = 2 * MiB;

/** Bytes identity-mapped by the boot page tables (4 GiB). */
export const IDENTITY_MAPPED_BYTES = PD_COUNT * ENTRIES_PER_TABLE * HUGE_PAGE_SIZE;

/** The value for CR3: the PML4's address (no PCID, caching flags clear). */
export const BOOT_CR3 = BigInt(PML4_START);

/** Writes the PML4, PDPT and page directories; the tables' pages are zeroed first. */
export function writeIdentityPageTables(memory: GuestMemory): void {
  memory.fill(PML4_START, PAGE_SIZE, 0);
  memory.fill(PDPT_START, PAGE_SIZE, 0);
  memory.writeU64(PML4_START, BigInt(PDPT_START) | PRESENT | WRITABLE);
  for (let pd = 0; pd < PD_COUNT; pd++) {
    const pdAddress = PD_START + pd * PAGE_SIZE;
    memory.writeU64(PDPT_START + pd * 8, BigInt(pdAddress) | PRESENT | WRITABLE);
    for (let i = 0; i < ENTRIES_PER_TABLE; i++) {
      const physical = BigInt((pd * ENTRIES_PER_TABLE + i) * HUGE_PAGE_SIZE);
      memory.writeU64(pdAddress + i * 8, physical | PRESENT | WRITABLE | PAGE_SIZE_2M);
    }
  }
}
