// The vCPU state at the kernel's 64-bit entry point, built directly as KVM's
// structs (struct kvm_regs and kvm_sregs in linux/kvm.h, typed in
// kvm/structs; the FPU starts as kvm/structs' defaultFpu()); the KVM layer
// encodes them. boot.rst, "64-bit Boot Protocol": 64-bit mode with paging
// on, __BOOT_CS/__BOOT_DS loaded, interrupts off, rsi = zero page.
import type { KvmRegs, KvmSegment, KvmSregs } from '../../kvm/structs/registers.js';
import { BOOT_GDT_SIZE, bootCodeSegment, bootDataSegment, bootTssSegment } from './gdt.js';
import { BOOT_GDT_START, BOOT_IDT_START, BOOT_STACK_POINTER, ZERO_PAGE_START } from './layout.js';
import { BOOT_CR3 } from './page-tables.js';

/**
 * The parts of struct kvm_sregs tsvmm sets. Leave the others (apic_base,
 * cr2, cr8, interrupt_bitmap) as KVM_GET_SREGS reports them.
 */
export type BootSregs = Pick<KvmSregs,
  'cs' | 'ds' | 'es' | 'fs' | 'gs' | 'ss' | 'tr' | 'ldt' |
  'gdt' | 'idt' | 'cr0' | 'cr3' | 'cr4' | 'efer'>;

/** RFLAGS bit 1 is reserved and always 1; IF (bit 9) clear: the protocol wants interrupts disabled. */
export const BOOT_RFLAGS = 0x2n;

export const CR0_PE = 1n << 0n; // protected mode
export const CR0_ET = 1n << 4n; // extension type: hard-wired to 1 since the 486; set so what we write is what the CPU reads back
export const CR0_PG = 1n << 31n; // paging (long mode needs it)
export const CR4_PAE = 1n << 5n; // long mode needs PAE-format page tables
export const EFER_LME = 1n << 8n; // long mode enable
export const EFER_LMA = 1n << 10n; // long mode active: set by hardware when PG turns on with LME; KVM_SET_SREGS takes it as given

/**
 * General registers at entry. rsp points at a small boot stack (the kernel
 * sets its own, but a valid one costs nothing); rbp = 0 ends frame-pointer
 * stack walks cleanly; rsi carries the zero page, as the protocol requires.
 */
export function bootRegisters(entry: number, zeroPage: number = ZERO_PAGE_START): KvmRegs {
  return {
    rax: 0n, rbx: 0n, rcx: 0n, rdx: 0n,
    rsi: BigInt(zeroPage), rdi: 0n, rsp: BigInt(BOOT_STACK_POINTER), rbp: 0n,
    r8: 0n, r9: 0n, r10: 0n, r11: 0n, r12: 0n, r13: 0n, r14: 0n, r15: 0n,
    rip: BigInt(entry), rflags: BOOT_RFLAGS,
  };
}

/** An LDT register marked unusable (not present): nothing uses an LDT at boot. */
function unusableLdt(): KvmSegment {
  return { base: 0n, limit: 0, selector: 0, type: 0, present: 0, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 1 };
}

/**
 * Long mode, directly: CR0.PE|PG, CR4.PAE, EFER.LME|LMA, CR3 = the identity
 * map, segment registers loaded from the boot GDT (see gdt.ts). CR0.CD/NW
 * are clear so caches are on.
 */
export function bootSpecialRegisters(): BootSregs {
  return {
    cs: bootCodeSegment(),
    ds: bootDataSegment(), es: bootDataSegment(), fs: bootDataSegment(),
    gs: bootDataSegment(), ss: bootDataSegment(),
    tr: bootTssSegment(),
    ldt: unusableLdt(),
    gdt: { base: BigInt(BOOT_GDT_START), limit: BOOT_GDT_SIZE - 1 },
    idt: { base: BigInt(BOOT_IDT_START), limit: 0 },
    cr0: CR0_PE | CR0_ET | CR0_PG,
    cr3: BOOT_CR3,
    cr4: CR4_PAE,
    efer: EFER_LME | EFER_LMA,
  };
}
