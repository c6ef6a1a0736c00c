import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../../src/memory/guest-memory.js';
import { buildMpTable, mpTableEntryCount, writeMpTable } from '../../../src/arch/x86_64/mptable.js';
import { BootConfigError } from '../../../src/arch/x86_64/errors.js';
import { MAX_CPUS } from '../../../src/config/types.js';

const sum = (bytes: Uint8Array) => bytes.reduce((s, b) => (s + b) & 0xff, 0);
const text = (bytes: Uint8Array) => String.fromCharCode(...bytes);

/** Walks the table the way Linux's mpparse.c does and returns its entries. */
function parse(table: Uint8Array) {
  const v = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const physptr = v.getUint32(4, true);
  const header = table.subarray(physptr - 0x9fc00);
  const hv = new DataView(header.buffer, header.byteOffset, header.byteLength);
  const length = hv.getUint16(4, true);
  const entries: { type: number; bytes: Uint8Array }[] = [];
  let at = 44;
  while (at < length) {
    const type = header[at]!;
    const size = type === 0 ? 20 : 8;
    entries.push({ type, bytes: header.subarray(at, at + size) });
    at += size;
  }
  return { physptr, header: header.subarray(0, length), count: hv.getUint16(34, true), entries };
}

describe('MP table', () => {
  it.each([1, 4])('is well formed for %i vCPU(s)', (cpus) => {
    const table = buildMpTable(cpus);
    expect(text(table.subarray(0, 4))).toBe('_MP_');
    expect(sum(table.subarray(0, 16))).toBe(0);
    expect(table[8]).toBe(1); // length in paragraphs
    expect(table[9]).toBe(4); // spec 1.4
    const { physptr, header, count, entries } = parse(table);
    expect(physptr).toBe(0x9fc10);
    expect(text(header.subarray(0, 4))).toBe('PCMP');
    expect(sum(header)).toBe(0);
    expect(count).toBe(cpus + 28);
    expect(mpTableEntryCount(cpus)).toBe(cpus + 28);
    expect(entries.length).toBe(count);
    expect(header.byteLength).toBe(44 + cpus * 20 + 28 * 8);
    expect(table.byteLength).toBe(16 + header.byteLength);
    const byType = (t: number) => entries.filter((e) => e.type === t);
    expect(byType(0).length).toBe(cpus);
    expect(byType(1).length).toBe(1);
    expect(byType(2).length).toBe(1);
    expect(byType(3).length).toBe(24);
    expect(byType(4).length).toBe(2);
  });

  it('lists processors with APIC ids 0..n-1 and the BSP flag on 0', () => {
    const { entries } = parse(buildMpTable(4));
    const cpus = entries.filter((e) => e.type === 0);
    expect(cpus.map((e) => e.bytes[1])).toEqual([0, 1, 2, 3]);
    expect(cpus.map((e) => e.bytes[3])).toEqual([3, 1, 1, 1]);
    expect(cpus[0]!.bytes[2]).toBe(0x14);
  });

  it('describes the ISA bus, the IOAPIC and its interrupts', () => {
    const { entries } = parse(buildMpTable(4));
    expect([...entries.find((e) => e.type === 1)!.bytes]).toEqual([1, 0, 0x49, 0x53, 0x41, 0x20, 0x20, 0x20]);
    expect([...entries.find((e) => e.type === 2)!.bytes]).toEqual([2, 4, 0x11, 1, 0x00, 0x00, 0xc0, 0xfe]);
    const irqs = entries.filter((e) => e.type === 3);
    expect([...irqs[0]!.bytes]).toEqual([3, 0, 5, 0, 0, 0, 4, 0]);
    expect([...irqs[5]!.bytes]).toEqual([3, 0, 5, 0, 0, 5, 4, 5]);
    expect([...irqs[23]!.bytes]).toEqual([3, 0, 5, 0, 0, 23, 4, 23]);
    const lints = entries.filter((e) => e.type === 4);
    expect([...lints[0]!.bytes]).toEqual([4, 3, 0, 0, 0, 0, 0, 0]);
    expect([...lints[1]!.bytes]).toEqual([4, 1, 0, 0, 0, 0, 0xff, 1]);
  });

  it('points the header at the local APIC', () => {
    const { header } = parse(buildMpTable(1));
    expect(new DataView(header.buffer, header.byteOffset).getUint32(36, true)).toBe(0xfee00000);
    expect(text(header.subarray(8, 16))).toBe('TSVMM   ');
  });

  it('is written at 0x9fc00', () => {
    const memory = GuestMemory.allocate(1024 * 1024);
    const size = writeMpTable(memory, 2);
    expect(size).toBe(16 + 44 + 40 + 224);
    expect(text(memory.slice(0x9fc00, 4))).toBe('_MP_');
    expect(text(memory.slice(0x9fc10, 4))).toBe('PCMP');
  });

  it.each([0, MAX_CPUS + 1, 1.5])('rejects %s vCPUs', (n) => {
    expect(() => buildMpTable(n)).toThrow(BootConfigError);
  });

  it('handles the largest vCPU count below 1 MiB', () => {
    const table = buildMpTable(MAX_CPUS);
    expect(sum(parse(table).header)).toBe(0);
    expect(0x9fc00 + table.byteLength).toBeLessThan(0x100000);
  });
});
