// Byte layouts of the register structs of <linux/kvm.h> (x86_64), with
// encoders and decoders. All fields are little-endian. The offsets are
// checked against the real header by test/unit/kvm/structs.test.ts.
//
//   struct kvm_regs    general purpose registers, rip, rflags   (KVM_GET/SET_REGS)
//   struct kvm_segment one segment register, unpacked from its descriptor
//   struct kvm_dtable  GDTR / IDTR
//   struct kvm_sregs   segments, control registers, EFER, APIC base (KVM_GET/SET_SREGS)

import { dataView } from './data-view.js';

/** Field order of struct kvm_regs: 18 consecutive __u64. */
export const REGS_FIELDS = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15',
  'rip', 'rflags',
] as const;
export type RegisterName = (typeof REGS_FIELDS)[number];
export type KvmRegs = Record<RegisterName, bigint>;

export const REGS_SIZE = 144;
/** Byte offset of a register inside struct kvm_regs. */
export function regsOffset(name: RegisterName): number {
  return REGS_FIELDS.indexOf(name) * 8;
}

export function emptyRegs(): KvmRegs {
  return Object.fromEntries(REGS_FIELDS.map((f) => [f, 0n])) as KvmRegs;
}

export function encodeRegs(regs: Partial<KvmRegs>, into = new Uint8Array(REGS_SIZE)): Uint8Array {
  const view = dataView(into);
  REGS_FIELDS.forEach((field, i) => view.setBigUint64(i * 8, regs[field] ?? 0n, true));
  return into;
}

export function decodeRegs(bytes: Uint8Array): KvmRegs {
  const view = dataView(bytes);
  const regs = emptyRegs();
  REGS_FIELDS.forEach((field, i) => { regs[field] = view.getBigUint64(i * 8, true); });
  return regs;
}

/** struct kvm_segment: the hidden (cached) part of a segment register. */
export interface KvmSegment {
  base: bigint;
  limit: number;
  selector: number;
  /** Descriptor type bits (e.g. 0xb = execute/read, accessed code). */
  type: number;
  present: number;
  dpl: number;
  /** Default operand size: 1 = 32-bit (must be 0 for 64-bit code). */
  db: number;
  /** 1 = code/data segment, 0 = system segment (TSS, LDT). */
  s: number;
  /** 1 = 64-bit code segment. */
  l: number;
  /** Granularity: limit in 4 KiB units. */
  g: number;
  avl: number;
  unusable: number;
}

export const SEGMENT_SIZE = 24;
export const SEGMENT_OFFSETS = {
  base: 0, limit: 8, selector: 12, type: 14, present: 15, dpl: 16,
  db: 17, s: 18, l: 19, g: 20, avl: 21, unusable: 22,
} as const;

/** struct kvm_dtable: base and limit of the GDT or IDT. */
export interface KvmDtable {
  base: bigint;
  limit: number;
}
export const DTABLE_SIZE = 16;
export const DTABLE_OFFSETS = { base: 0, limit: 8 } as const;

const SEGMENT_NAMES = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const;
type SegmentName = (typeof SEGMENT_NAMES)[number];

export interface KvmSregs extends Record<SegmentName, KvmSegment> {
  gdt: KvmDtable;
  idt: KvmDtable;
  cr0: bigint;
  cr2: bigint;
  cr3: bigint;
  cr4: bigint;
  cr8: bigint;
  efer: bigint;
  apicBase: bigint;
  /** Pending external interrupts, 256 bits as four __u64. */
  interruptBitmap: [bigint, bigint, bigint, bigint];
}

export const SREGS_SIZE = 312;
export const SREGS_OFFSETS = {
  cs: 0, ds: 24, es: 48, fs: 72, gs: 96, ss: 120, tr: 144, ldt: 168,
  gdt: 192, idt: 208,
  cr0: 224, cr2: 232, cr3: 240, cr4: 248, cr8: 256,
  efer: 264, apicBase: 272, interruptBitmap: 280,
} as const;

const CONTROL_REGISTERS = ['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer', 'apicBase'] as const;

function writeSegment(view: DataView, at: number, seg: KvmSegment): void {
  const o = SEGMENT_OFFSETS;
  view.setBigUint64(at + o.base, seg.base, true);
  view.setUint32(at + o.limit, seg.limit, true);
  view.setUint16(at + o.selector, seg.selector, true);
  for (const field of ['type', 'present', 'dpl', 'db', 's', 'l', 'g', 'avl', 'unusable'] as const) {
    view.setUint8(at + o[field], seg[field]);
  }
  view.setUint8(at + SEGMENT_OFFSETS.unusable + 1, 0); // padding
}

function readSegment(view: DataView, at: number): KvmSegment {
  const o = SEGMENT_OFFSETS;
  return {
    base: view.getBigUint64(at + o.base, true),
    limit: view.getUint32(at + o.limit, true),
    selector: view.getUint16(at + o.selector, true),
    type: view.getUint8(at + o.type),
    present: view.getUint8(at + o.present),
    dpl: view.getUint8(at + o.dpl),
    db: view.getUint8(at + o.db),
    s: view.getUint8(at + o.s),
    l: view.getUint8(at + o.l),
    g: view.getUint8(at + o.g),
    avl: view.getUint8(at + o.avl),
    unusable: view.getUint8(at + o.unusable),
  };
}

export function encodeSregs(sregs: KvmSregs, into = new Uint8Array(SREGS_SIZE)): Uint8Array {
  const view = dataView(into);
  for (const name of SEGMENT_NAMES) writeSegment(view, SREGS_OFFSETS[name], sregs[name]);
  for (const name of ['gdt', 'idt'] as const) {
    view.setBigUint64(SREGS_OFFSETS[name] + DTABLE_OFFSETS.base, sregs[name].base, true);
    view.setUint16(SREGS_OFFSETS[name] + DTABLE_OFFSETS.limit, sregs[name].limit, true);
    // The 3 x __u16 padding after limit stays as it was (zero in fresh buffers).
  }
  for (const name of CONTROL_REGISTERS) view.setBigUint64(SREGS_OFFSETS[name], sregs[name], true);
  sregs.interruptBitmap.forEach((word, i) =>
    view.setBigUint64(SREGS_OFFSETS.interruptBitmap + i * 8, word, true));
  return into;
}

export function decodeSregs(bytes: Uint8Array): KvmSregs {
  const view = dataView(bytes);
  const table = (at: number): KvmDtable => ({
    base: view.getBigUint64(at + DTABLE_OFFSETS.base, true),
    limit: view.getUint16(at + DTABLE_OFFSETS.limit, true),
  });
  const bitmap = (i: number) => view.getBigUint64(SREGS_OFFSETS.interruptBitmap + i * 8, true);
  const sregs = {
    gdt: table(SREGS_OFFSETS.gdt),
    idt: table(SREGS_OFFSETS.idt),
    interruptBitmap: [bitmap(0), bitmap(1), bitmap(2), bitmap(3)],
  } as Partial<KvmSregs>;
  for (const name of SEGMENT_NAMES) sregs[name] = readSegment(view, SREGS_OFFSETS[name]);
  for (const name of CONTROL_REGISTERS) sregs[name] = view.getBigUint64(SREGS_OFFSETS[name], true);
  return sregs as KvmSregs;
}
