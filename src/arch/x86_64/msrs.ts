// Model-specific registers set before the first KVM_RUN. Most are zeroed
// explicitly so every boot starts from the same state (after a reset KVM
// keeps some values from before); two carry what a PC firmware would have
// set up. Indices: Intel SDM vol. 4, "Model-Specific Registers";
// arch/x86/include/asm/msr-index.h.
import type { MsrEntry } from '../../kvm/structs/cpu-state.js';

export const MSR_IA32_TSC = 0x10;
export const MSR_IA32_SYSENTER_CS = 0x174;
export const MSR_IA32_SYSENTER_ESP = 0x175;
export const MSR_IA32_SYSENTER_EIP = 0x176;
export const MSR_IA32_MISC_ENABLE = 0x1a0;
export const MSR_MTRR_DEF_TYPE = 0x2ff;
export const MSR_STAR = 0xc000_0081; // SYSCALL target CS/SS
export const MSR_LSTAR = 0xc000_0082; // SYSCALL entry, 64-bit callers
export const MSR_CSTAR = 0xc000_0083; // SYSCALL entry, compat callers
export const MSR_SYSCALL_MASK = 0xc000_0084; // RFLAGS bits cleared on SYSCALL
export const MSR_KERNEL_GS_BASE = 0xc000_0102; // swapped in by SWAPGS

/** IA32_MISC_ENABLE bit 0. Linux drops its REP MOVS/STOSB fast paths when it is clear (arch/x86/kernel/cpu/intel.c). */
export const MISC_ENABLE_FAST_STRING = 1n << 0n;
/** IA32_MTRR_DEF_TYPE bit 11: MTRRs enabled. */
export const MTRR_ENABLE = 1n << 11n;
/** Memory type 6: write-back. */
export const MTRR_TYPE_WRITE_BACK = 6n;

/**
 * The boot MSR list. MTRRdefType: a firmware enables MTRRs with write-back
 * as the default type; left at reset (E = 0), every address is uncacheable
 * as far as the guest knows, and Linux's MTRR/PAT setup
 * (arch/x86/kernel/cpu/mtrr/) then works from a machine with no cacheable
 * memory. With no variable ranges, "all RAM write-back" is exactly E | WB.
 */
export function bootMsrs(): MsrEntry[] {
  return [
    { index: MSR_IA32_SYSENTER_CS, data: 0n },
    { index: MSR_IA32_SYSENTER_ESP, data: 0n },
    { index: MSR_IA32_SYSENTER_EIP, data: 0n },
    { index: MSR_STAR, data: 0n },
    { index: MSR_CSTAR, data: 0n },
    { index: MSR_KERNEL_GS_BASE, data: 0n },
    { index: MSR_SYSCALL_MASK, data: 0n },
    { index: MSR_LSTAR, data: 0n },
    { index: MSR_IA32_TSC, data: 0n },
    { index: MSR_IA32_MISC_ENABLE, data: MISC_ENABLE_FAST_STRING },
    { index: MSR_MTRR_DEF_TYPE, data: MTRR_ENABLE | MTRR_TYPE_WRITE_BACK },
  ];
}
