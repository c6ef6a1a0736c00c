import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../../src/memory/guest-memory.js';
import {
  bootCodeSegment, bootDataSegment, bootGdt, bootTssSegment, encodeDescriptor, writeBootGdt,
} from '../../../src/arch/x86_64/gdt.js';

const u64 = (bytes: Uint8Array, at = 0) => new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(at, true);

describe('boot GDT', () => {
  it('encodes a flat 64-bit code segment', () => {
    expect([...encodeDescriptor(bootCodeSegment())]).toEqual([0xff, 0xff, 0, 0, 0, 0x9b, 0xaf, 0]);
  });

  it('encodes a flat data segment', () => {
    expect(u64(encodeDescriptor(bootDataSegment()))).toBe(0x00cf_9300_0000_ffffn);
  });

  it('encodes the TSS as a 16-byte system descriptor', () => {
    const tss = encodeDescriptor(bootTssSegment());
    expect(tss.byteLength).toBe(16);
    expect(u64(tss)).toBe(0x0000_8b00_0580_0067n);
    expect(u64(tss, 8)).toBe(0n);
  });

  it('spreads base bits across the descriptor', () => {
    const segment = { ...bootDataSegment(), base: 0x1234_5678_9abc_def0n, g: 0, limit: 0xabcde };
    const bytes = encodeDescriptor({ ...segment, s: 0, type: 0x9 });
    expect(u64(bytes)).toBe(0x9a4a_89bc_def0_bcden);
    expect(u64(bytes, 8)).toBe(0x1234_5678n);
  });

  it('puts __BOOT_CS at 0x10 and __BOOT_DS at 0x18 behind two null entries', () => {
    const gdt = bootGdt();
    expect(gdt.byteLength).toBe(48);
    expect(u64(gdt, 0)).toBe(0n);
    expect(u64(gdt, 8)).toBe(0n);
    expect(u64(gdt, 0x10)).toBe(0x00af_9b00_0000_ffffn);
    expect(u64(gdt, 0x18)).toBe(0x00cf_9300_0000_ffffn);
    expect(u64(gdt, 0x20)).toBe(0x0000_8b00_0580_0067n);
  });

  it('writes the GDT at 0x500 and clears the IDT and TSS', () => {
    const memory = GuestMemory.allocate(0x10000);
    memory.fill(0x500, 0x100, 0xaa);
    writeBootGdt(memory);
    expect(memory.readU64(0x510)).toBe(0x00af_9b00_0000_ffffn);
    expect(memory.readU64(0x540)).toBe(0n);
    expect(memory.slice(0x580, 0x68)).toEqual(new Uint8Array(0x68));
  });
});
