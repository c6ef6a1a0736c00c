// Byte layouts of the per-vCPU state structs of <linux/kvm.h> (x86_64):
//
//   struct kvm_fpu          x87 / SSE state                      (KVM_GET/SET_FPU)
//   struct kvm_msrs         header + kvm_msr_entry[nmsrs]        (KVM_GET/SET_MSRS)
//   struct kvm_cpuid2       header + kvm_cpuid_entry2[nent]      (KVM_SET_CPUID2, KVM_GET_SUPPORTED_CPUID)
//   struct kvm_lapic_state  the 1 KiB local APIC register page   (KVM_GET/SET_LAPIC)
//
// kvm_msrs and kvm_cpuid2 end in a flexible array: the ioctl number encodes
// only the header size, and the buffer we pass holds header + entries.

import { dataView, requireSize } from './data-view.js';

// ---- struct kvm_fpu -------------------------------------------------------

export const FPU_SIZE = 416;
export const FPU_OFFSETS = {
  fpr: 0, fcw: 128, fsw: 130, ftwx: 132, lastOpcode: 134,
  lastIp: 136, lastDp: 144, xmm: 152, mxcsr: 408,
} as const;

export interface KvmFpu {
  /** 8 x87 registers, 16 bytes each (80-bit value + padding). */
  fpr: Uint8Array;
  fcw: number;
  fsw: number;
  /** Abridged tag word (one bit per register, as in FXSAVE). */
  ftwx: number;
  lastOpcode: number;
  lastIp: bigint;
  lastDp: bigint;
  /** 16 XMM registers, 16 bytes each. */
  xmm: Uint8Array;
  mxcsr: number;
}

/**
 * The x87/SSE state after reset, which tsvmm gives every vCPU: all
 * exceptions masked, 64-bit precision, round to nearest (fcw 0x37f; Intel
 * SDM vol. 1, 8.1.5) and the same for SSE (mxcsr 0x1f80; 10.2.3), registers
 * zero. KVM's zeroed kvm_fpu would unmask every floating-point exception.
 */
export function defaultFpu(): KvmFpu {
  return {
    fpr: new Uint8Array(128), fcw: 0x37f, fsw: 0, ftwx: 0, lastOpcode: 0,
    lastIp: 0n, lastDp: 0n, xmm: new Uint8Array(256), mxcsr: 0x1f80,
  };
}

export function encodeFpu(fpu: KvmFpu, into = new Uint8Array(FPU_SIZE)): Uint8Array {
  requireSize(into, FPU_SIZE, 'struct kvm_fpu');
  const view = dataView(into);
  const o = FPU_OFFSETS;
  into.set(fpu.fpr.subarray(0, 128), o.fpr);
  view.setUint16(o.fcw, fpu.fcw, true);
  view.setUint16(o.fsw, fpu.fsw, true);
  view.setUint8(o.ftwx, fpu.ftwx);
  view.setUint16(o.lastOpcode, fpu.lastOpcode, true);
  view.setBigUint64(o.lastIp, fpu.lastIp, true);
  view.setBigUint64(o.lastDp, fpu.lastDp, true);
  into.set(fpu.xmm.subarray(0, 256), o.xmm);
  view.setUint32(o.mxcsr, fpu.mxcsr, true);
  return into;
}

export function decodeFpu(bytes: Uint8Array): KvmFpu {
  requireSize(bytes, FPU_SIZE, 'struct kvm_fpu');
  const view = dataView(bytes);
  const o = FPU_OFFSETS;
  return {
    fpr: bytes.slice(o.fpr, o.fpr + 128),
    fcw: view.getUint16(o.fcw, true),
    fsw: view.getUint16(o.fsw, true),
    ftwx: view.getUint8(o.ftwx),
    lastOpcode: view.getUint16(o.lastOpcode, true),
    lastIp: view.getBigUint64(o.lastIp, true),
    lastDp: view.getBigUint64(o.lastDp, true),
    xmm: bytes.slice(o.xmm, o.xmm + 256),
    mxcsr: view.getUint32(o.mxcsr, true),
  };
}

// ---- struct kvm_msrs / kvm_msr_entry -------------------------------------

/** struct kvm_msrs: __u32 nmsrs; __u32 pad; struct kvm_msr_entry entries[]. */
export const MSRS_HEADER_SIZE = 8;
export const MSR_ENTRY_SIZE = 16;
export const MSR_ENTRY_OFFSETS = { index: 0, data: 8 } as const;

export interface MsrEntry {
  index: number;
  data: bigint;
}

export function encodeMsrs(entries: readonly MsrEntry[]): Uint8Array {
  const bytes = new Uint8Array(MSRS_HEADER_SIZE + entries.length * MSR_ENTRY_SIZE);
  const view = dataView(bytes);
  view.setUint32(0, entries.length, true);
  entries.forEach((entry, i) => {
    const at = MSRS_HEADER_SIZE + i * MSR_ENTRY_SIZE;
    view.setUint32(at + MSR_ENTRY_OFFSETS.index, entry.index, true);
    view.setBigUint64(at + MSR_ENTRY_OFFSETS.data, entry.data, true);
  });
  return bytes;
}

/** Decodes the first `count` entries (KVM_GET_MSRS returns how many it filled). */
export function decodeMsrs(bytes: Uint8Array, count = dataView(bytes).getUint32(0, true)): MsrEntry[] {
  requireSize(bytes, MSRS_HEADER_SIZE + count * MSR_ENTRY_SIZE, 'struct kvm_msrs');
  const view = dataView(bytes);
  return Array.from({ length: count }, (_, i) => {
    const at = MSRS_HEADER_SIZE + i * MSR_ENTRY_SIZE;
    return {
      index: view.getUint32(at + MSR_ENTRY_OFFSETS.index, true),
      data: view.getBigUint64(at + MSR_ENTRY_OFFSETS.data, true),
    };
  });
}

// ---- struct kvm_cpuid2 / kvm_cpuid_entry2 --------------------------------

/** struct kvm_cpuid2: __u32 nent; __u32 padding; struct kvm_cpuid_entry2 entries[]. */
export const CPUID2_HEADER_SIZE = 8;
export const CPUID_ENTRY_SIZE = 40;
export const CPUID_ENTRY_OFFSETS = {
  function: 0, index: 4, flags: 8, eax: 12, ebx: 16, ecx: 20, edx: 24,
} as const;

/** kvm_cpuid_entry2.flags: the leaf has subleaves, told apart by `index` (ECX). */
export const KVM_CPUID_FLAG_SIGNIFCANT_INDEX = 1;

export interface CpuidEntry {
  function: number;
  index: number;
  /** KVM_CPUID_FLAG_*. */
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}
const CPUID_FIELDS = ['function', 'index', 'flags', 'eax', 'ebx', 'ecx', 'edx'] as const;

/** Encodes `entries`, leaving room for `capacity` entries (KVM_GET_SUPPORTED_CPUID fills them). */
export function encodeCpuid2(entries: readonly CpuidEntry[], capacity = entries.length): Uint8Array {
  const slots = Math.max(capacity, entries.length);
  const bytes = new Uint8Array(CPUID2_HEADER_SIZE + slots * CPUID_ENTRY_SIZE);
  const view = dataView(bytes);
  view.setUint32(0, slots, true);
  entries.forEach((entry, i) => {
    const at = CPUID2_HEADER_SIZE + i * CPUID_ENTRY_SIZE;
    for (const field of CPUID_FIELDS) {
      view.setUint32(at + CPUID_ENTRY_OFFSETS[field], entry[field] >>> 0, true);
    }
  });
  return bytes;
}

export function decodeCpuid2(bytes: Uint8Array): CpuidEntry[] {
  const view = dataView(bytes);
  const count = view.getUint32(0, true);
  requireSize(bytes, CPUID2_HEADER_SIZE + count * CPUID_ENTRY_SIZE, 'struct kvm_cpuid2');
  return Array.from({ length: count }, (_, i) => {
    const at = CPUID2_HEADER_SIZE + i * CPUID_ENTRY_SIZE;
    const entry = {} as CpuidEntry;
    for (const field of CPUID_FIELDS) entry[field] = view.getUint32(at + CPUID_ENTRY_OFFSETS[field], true);
    return entry;
  });
}

// ---- struct kvm_lapic_state ----------------------------------------------

/** The local APIC register page as KVM stores it: char regs[1024]. */
export const LAPIC_STATE_SIZE = 1024;
/** Register offsets inside the page (Intel SDM vol. 3, table "Local APIC Register Address Map"). */
export const LapicRegister = {
  ID: 0x20,
  SPURIOUS_VECTOR: 0xf0,
  LVT_LINT0: 0x350,
  LVT_LINT1: 0x360,
} as const;
/** LVT delivery modes (bits 10:8 of an LVT entry). */
export const LapicDeliveryMode = { FIXED: 0, NMI: 4, EXTINT: 7 } as const;

export function readLapicRegister(state: Uint8Array, offset: number): number {
  return dataView(state).getUint32(offset, true);
}

export function writeLapicRegister(state: Uint8Array, offset: number, value: number): void {
  dataView(state).setUint32(offset, value >>> 0, true);
}
