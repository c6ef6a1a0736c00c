// The boot GDT. The 64-bit boot protocol (boot.rst) wants flat 4 GiB
// segments at the selectors Linux's own boot code uses: __BOOT_CS = 0x10
// (execute/read) and __BOOT_DS = 0x18 (read/write). Entry 1 stays null, as
// in Linux's boot GDT. A TSS follows because KVM requires TR to hold a
// usable 64-bit TSS in long mode; Linux installs its own GDT and TSS early.
//
// Each segment is described once, as KVM's struct kvm_segment (what
// KVM_SET_SREGS loads into the hidden segment registers; `limit` in bytes,
// already scaled by `g`), and the 8-byte GDT descriptors are encoded from
// that, so the two cannot disagree.
// Descriptor format: Intel SDM vol. 3, 3.4.5 "Segment Descriptors" and
// 8.2.3 "TSS Descriptor in 64-bit mode".
import type { KvmSegment } from '../../kvm/structs/registers.js'; // type only: this code stays pure
import type { GuestMemory } from '../../memory/guest-memory.js';
import { BOOT_GDT_START, BOOT_IDT_START, BOOT_TSS_START } from './layout.js';

export const BOOT_CODE_SELECTOR = 0x10;
export const BOOT_DATA_SELECTOR = 0x18;
export const BOOT_TSS_SELECTOR = 0x20;

/** Bytes the boot GDT occupies: null, null, code, data, and the 16-byte TSS descriptor. */
export const BOOT_GDT_SIZE = 6 * 8;
/** A 64-bit TSS is 104 bytes (SDM 8.7); limit = size - 1. */
export const TSS_LIMIT = 0x67;

// Segment types (SDM 3.4.5.1 and 3.5): code execute/read accessed, data read/write accessed, busy 64-bit TSS.
const TYPE_CODE_EXEC_READ_ACCESSED = 0xb;
const TYPE_DATA_READ_WRITE_ACCESSED = 0x3;
const TYPE_TSS_64_BUSY = 0xb;

/** 64-bit code: L = 1 (and D must then be 0), flat 4 GiB with 4 KiB granularity. */
export function bootCodeSegment(): KvmSegment {
  return {
    base: 0n, limit: 0xffff_ffff, selector: BOOT_CODE_SELECTOR, type: TYPE_CODE_EXEC_READ_ACCESSED,
    present: 1, dpl: 0, db: 0, s: 1, l: 1, g: 1, avl: 0, unusable: 0,
  };
}

/** Flat 4 GiB read/write data; also used for SS, ES, FS and GS. */
export function bootDataSegment(): KvmSegment {
  return {
    base: 0n, limit: 0xffff_ffff, selector: BOOT_DATA_SELECTOR, type: TYPE_DATA_READ_WRITE_ACCESSED,
    present: 1, dpl: 0, db: 1, s: 1, l: 0, g: 1, avl: 0, unusable: 0,
  };
}

/** The zeroed TSS at BOOT_TSS_START; "busy" because TR is loaded as if by LTR. */
export function bootTssSegment(): KvmSegment {
  return {
    base: BigInt(BOOT_TSS_START), limit: TSS_LIMIT, selector: BOOT_TSS_SELECTOR, type: TYPE_TSS_64_BUSY,
    present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0,
  };
}

/**
 * Encodes a segment as a GDT descriptor: 8 bytes for code/data (s = 1),
 * 16 bytes for a 64-bit system descriptor (s = 0: TSS, LDT), whose upper
 * half holds base bits 63..32. `unusable` (KVM's mark for a segment
 * register holding no usable segment) has no place in a descriptor.
 */
export function encodeDescriptor(segment: KvmSegment): Uint8Array {
  const rawLimit = BigInt(segment.g ? segment.limit >>> 12 : segment.limit);
  const base = segment.base;
  const access = BigInt(segment.type | (segment.s << 4) | (segment.dpl << 5) | (segment.present << 7));
  const flags = BigInt(segment.avl | (segment.l << 1) | (segment.db << 2) | (segment.g << 3));
  const low = (rawLimit & 0xffffn)
    | ((base & 0xff_ffffn) << 16n)
    | (access << 40n)
    | (((rawLimit >> 16n) & 0xfn) << 48n)
    | (flags << 52n)
    | (((base >> 24n) & 0xffn) << 56n);
  const bytes = new Uint8Array(segment.s ? 8 : 16);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, low, true);
  if (!segment.s) view.setBigUint64(8, (base >> 32n) & 0xffff_ffffn, true);
  return bytes;
}

/** The whole boot GDT as the guest sees it at BOOT_GDT_START. */
export function bootGdt(): Uint8Array {
  const gdt = new Uint8Array(BOOT_GDT_SIZE);
  gdt.set(encodeDescriptor(bootCodeSegment()), BOOT_CODE_SELECTOR);
  gdt.set(encodeDescriptor(bootDataSegment()), BOOT_DATA_SELECTOR);
  gdt.set(encodeDescriptor(bootTssSegment()), BOOT_TSS_SELECTOR);
  return gdt;
}

/**
 * Writes the GDT, an empty IDT (with limit 0, any interrupt or exception
 * before Linux loads its own IDT escalates to a triple fault, a clean
 * KVM_EXIT_SHUTDOWN instead of a jump into garbage) and a zeroed TSS.
 */
export function writeBootGdt(memory: GuestMemory): void {
  memory.write(BOOT_GDT_START, bootGdt());
  memory.fill(BOOT_IDT_START, 8, 0);
  memory.fill(BOOT_TSS_START, TSS_LIMIT + 1, 0);
}
