import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildDsdt } from '../../../../src/arch/x86_64/acpi/dsdt.js';
import { buildFadt } from '../../../../src/arch/x86_64/acpi/fadt.js';
import { buildMadt } from '../../../../src/arch/x86_64/acpi/madt.js';
import { buildRsdp } from '../../../../src/arch/x86_64/acpi/rsdp.js';
import { writeAcpiTables } from '../../../../src/arch/x86_64/acpi/tables.js';
import { buildXsdt } from '../../../../src/arch/x86_64/acpi/xsdt.js';
import { E820_RESERVED, e820Map } from '../../../../src/arch/x86_64/e820.js';
import { ramRegions, virtioMmioSlot } from '../../../../src/arch/x86_64/layout.js';
import { GuestMemory } from '../../../../src/memory/guest-memory.js';
import { MAX_CPUS } from '../../../../src/config/types.js';

const MiB = 1024 * 1024;
const sum = (bytes: Uint8Array) => bytes.reduce((s, b) => (s + b) & 0xff, 0);
const text = (bytes: Uint8Array) => String.fromCharCode(...bytes);
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const view = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** The checks Linux (ACPICA's acpi_tb_verify_checksum and header parsing) applies to every table. */
function expectValidTable(table: Uint8Array, signature: string, revision: number): void {
  expect(text(table.subarray(0, 4))).toBe(signature);
  expect(view(table).getUint32(4, true)).toBe(table.byteLength);
  expect(table[8]).toBe(revision);
  expect(sum(table)).toBe(0);
  expect(text(table.subarray(10, 16))).toBe('TSVMM ');
  expect(text(table.subarray(16, 24))).toBe(`TSVM${signature}`);
  expect(view(table).getUint32(24, true)).toBe(1); // OEM revision
  expect(text(table.subarray(28, 32))).toBe('TSVM'); // creator id
}

/** A Generic Address Structure for a byte-wide I/O port (ACPI 6.5 Table 5.1). */
const ioByteGas = (port: number) => `01080001${port.toString(16).padStart(4, '0').replace(/(..)(..)/, '$2$1')}000000000000`;

function guest(): GuestMemory {
  return GuestMemory.allocate(64 * MiB, ramRegions(64 * MiB));
}

describe('RSDP (ACPI 6.5 section 5.2.5.3)', () => {
  it('is revision 2 with the XSDT address and both checksums', () => {
    const rsdp = buildRsdp(0xe0030);
    expect(rsdp.byteLength).toBe(36);
    expect(text(rsdp.subarray(0, 8))).toBe('RSD PTR ');
    expect(sum(rsdp.subarray(0, 20))).toBe(0); // ACPI 1.0 checksum
    expect(sum(rsdp)).toBe(0); // extended checksum
    expect(text(rsdp.subarray(9, 15))).toBe('TSVMM ');
    expect(rsdp[15]).toBe(2);
    expect(view(rsdp).getUint32(16, true)).toBe(0); // no RSDT
    expect(view(rsdp).getUint32(20, true)).toBe(36);
    expect(view(rsdp).getBigUint64(24, true)).toBe(0xe0030n);
    expect([...rsdp.subarray(33)]).toEqual([0, 0, 0]);
  });
});

describe('XSDT (section 5.2.8)', () => {
  it('lists 64-bit table addresses after the header', () => {
    const xsdt = buildXsdt([0xe0070, 0x1_0000_0000]);
    expectValidTable(xsdt, 'XSDT', 1);
    expect(xsdt.byteLength).toBe(36 + 16);
    expect(view(xsdt).getBigUint64(36, true)).toBe(0xe0070n);
    expect(view(xsdt).getBigUint64(44, true)).toBe(0x1_0000_0000n);
  });
});

describe('FADT (section 5.2.9, Table 5.9)', () => {
  const fadt = buildFadt(0xe01f0);
  const v = view(fadt);

  it('is revision 6.5, 276 bytes, hardware-reduced', () => {
    expectValidTable(fadt, 'FACP', 6);
    expect(fadt.byteLength).toBe(276);
    expect(fadt[131]).toBe(5); // FADT minor version
    // HW_REDUCED_ACPI (20), RESET_REG_SUP (10), SLP_BUTTON (5), PWR_BUTTON (4) (Table 5.10)
    expect(v.getUint32(112, true)).toBe((1 << 20) | (1 << 10) | (1 << 5) | (1 << 4));
  });

  it('points at the DSDT through X_DSDT only, and has no FACS, SCI or SMI port', () => {
    expect(v.getBigUint64(140, true)).toBe(0xe01f0n); // X_DSDT
    expect(v.getUint32(40, true)).toBe(0); // DSDT (32-bit) must be 0 when X_DSDT is set
    expect(v.getUint32(36, true)).toBe(0); // FIRMWARE_CTRL
    expect(v.getBigUint64(132, true)).toBe(0n); // X_FIRMWARE_CTRL
    expect(v.getUint16(46, true)).toBe(0); // SCI_INT
    expect(v.getUint32(48, true)).toBe(0); // SMI_CMD
    expect(hex(fadt.subarray(148, 244))).toBe('00'.repeat(96)); // X_PM1a_EVT_BLK .. X_GPE1_BLK
  });

  it('gives the power device\'s sleep and reset registers as byte-wide I/O ports 0x600-0x602', () => {
    expect(hex(fadt.subarray(244, 256))).toBe(ioByteGas(0x600)); // SLEEP_CONTROL_REG
    expect(hex(fadt.subarray(256, 268))).toBe(ioByteGas(0x601)); // SLEEP_STATUS_REG
    expect(hex(fadt.subarray(116, 128))).toBe(ioByteGas(0x602)); // RESET_REG
    expect(fadt[128]).toBe(1); // RESET_VALUE
  });

  it('says: no VGA, CMOS RTC present with its century register, no 8042 to probe', () => {
    expect(v.getUint16(109, true)).toBe(1 << 2); // IAPC_BOOT_ARCH: VGA Not Present only (Table 5.11)
    expect(fadt[108]).toBe(0x32); // CENTURY
    expect(text(fadt.subarray(268, 276))).toBe('TSVMM   ');
  });
});

describe('MADT (section 5.2.12)', () => {
  it.each([1, 4])('lists %i local APIC(s) and the IOAPIC', (cpus) => {
    const madt = buildMadt(cpus);
    expectValidTable(madt, 'APIC', 6);
    expect(madt.byteLength).toBe(44 + 8 * cpus + 12);
    expect(view(madt).getUint32(36, true)).toBe(0xfee0_0000); // local APIC address
    expect(view(madt).getUint32(40, true)).toBe(1); // PCAT_COMPAT
    for (let cpu = 0; cpu < cpus; cpu++) {
      // type 0, length 8, UID = cpu, APIC id = cpu, flags = enabled (Table 5.22)
      expect(hex(madt.subarray(44 + 8 * cpu, 52 + 8 * cpu))).toBe(`0008${hex(Uint8Array.of(cpu, cpu))}01000000`);
    }
    // type 1, length 12, id = cpu count (as in the MP table), reserved, 0xFEC00000, GSI base 0 (Table 5.24)
    expect(hex(madt.subarray(44 + 8 * cpus))).toBe(`010c${hex(Uint8Array.of(cpus))}00` + '0000c0fe' + '00000000');
  });

  it('has no interrupt source overrides or other entries', () => {
    const madt = buildMadt(2);
    const types: number[] = [];
    for (let at = 44; at < madt.byteLength; at += madt[at + 1]!) types.push(madt[at]!);
    expect(types).toEqual([0, 0, 1]);
  });

  it('refuses vCPU counts beyond the VM\'s limit', () => {
    expect(() => buildMadt(0)).toThrow(`between 1 and ${MAX_CPUS}`);
    expect(() => buildMadt(MAX_CPUS + 1)).toThrow(`between 1 and ${MAX_CPUS}`);
  });
});

describe('DSDT (section 5.2.11.1)', () => {
  // What iasl 20200925 compiles the ASL in src/arch/x86_64/acpi/dsdt.ts's
  // header comment to (RTC, COM1, then V000 and V001 at 0xD0000000 /
  // 0xD0001000, IRQs 5 and 6, then \_S5), after the 36-byte table header.
  const IASL_BODY =
    '10450d5f53425f5b82225254435f085f4849440c41d00b00085f435253110d0a0a470170007000010279005b8231434f4d31' +
    '085f4849440c41d00501085f55494400085f43525311160a134701f803f803010889060003010400000079005b823a563030' +
    '30085f4849440d4c4e524f3030303500085f55494400085f435253111a0a1786090001000000d00010000089060003010500' +
    '000079005b823a56303031085f4849440d4c4e524f3030303500085f55494401085f435253111a0a1786090001001000d000' +
    '1000008906000301060000007900085f53355f1205020a0500';

  it('matches iasl byte for byte for the clock, the serial port and two virtio-mmio devices', () => {
    const dsdt = buildDsdt({ serial: true, virtioSlots: [virtioMmioSlot(0), virtioMmioSlot(1)] });
    expectValidTable(dsdt, 'DSDT', 2);
    expect(hex(dsdt.subarray(36))).toBe(IASL_BODY);
  });

  it('leaves out the serial port when it is off, and keeps the clock and \\_S5 with no devices', () => {
    const dsdt = buildDsdt({ serial: false, virtioSlots: [] });
    expectValidTable(dsdt, 'DSDT', 2);
    // Scope (\_SB) { Device (RTC) {...} } then Name (_S5, Package () { 5, 0 })
    const clock = '5b82225254435f085f4849440c41d00b00085f435253110d0a0a47017000700001027900';
    expect(hex(dsdt.subarray(36))).toBe('10295f53425f' + clock + '085f53355f1205020a0500');
  });

  it('names up to all 19 slots V000..V018 with _UID 0..18', () => {
    const slots = Array.from({ length: 19 }, (_, i) => virtioMmioSlot(i));
    const body = text(buildDsdt({ serial: false, virtioSlots: slots }));
    for (let i = 0; i < 19; i++) expect(body).toContain(`V${String(i).padStart(3, '0')}`);
    expect(body.split('LNRO0005').length - 1).toBe(19);
  });
});

describe('writeAcpiTables', () => {
  const platform = { cpuCount: 2, serial: true, virtioSlots: [virtioMmioSlot(0), virtioMmioSlot(1)] };

  it('puts the RSDP at 0xE0000 and links RSDP -> XSDT -> FADT -> DSDT and MADT', () => {
    const memory = guest();
    const placed = writeAcpiTables(memory, platform);
    expect(placed.rsdpAddress).toBe(0xe0000);
    expect(placed.tables.map((t) => t.signature)).toEqual(['RSD PTR ', 'XSDT', 'FACP', 'APIC', 'DSDT']);
    const xsdt = view(memory.slice(0, 2 * MiB)).getBigUint64(0xe0000 + 24, true);
    const entries = [0, 1].map((i) => Number(memory.readU64(Number(xsdt) + 36 + 8 * i)));
    expect(entries.map((address) => text(memory.slice(address, 4)))).toEqual(['FACP', 'APIC']);
    const dsdt = Number(memory.readU64(entries[0]! + 140));
    expect(text(memory.slice(dsdt, 4))).toBe('DSDT');
    for (const table of placed.tables) {
      expect(table.address % 16).toBe(0);
      expect(sum(memory.slice(table.address, table.size))).toBe(0);
    }
  });

  it('stays inside the reserved BIOS area, without overlaps, even for the most vCPUs and 19 devices', () => {
    const memory = guest();
    const slots = Array.from({ length: 19 }, (_, i) => virtioMmioSlot(i));
    const { tables } = writeAcpiTables(memory, { cpuCount: MAX_CPUS, serial: true, virtioSlots: slots });
    const reserved = e820Map(64 * MiB).find((e) => e.type === E820_RESERVED)!;
    for (const [i, table] of tables.entries()) {
      expect(table.address).toBeGreaterThanOrEqual(reserved.address);
      expect(table.address + table.size).toBeLessThanOrEqual(reserved.address + reserved.size);
      if (i > 0) expect(table.address).toBeGreaterThanOrEqual(tables[i - 1]!.address + tables[i - 1]!.size);
    }
  });

  it('is found by a BIOS-area scan the way ACPICA does it (16-byte steps over 0xE0000-0xFFFFF)', () => {
    const memory = guest();
    writeAcpiTables(memory, platform);
    const area = memory.slice(0xe0000, 0x20000);
    const found: number[] = [];
    for (let at = 0; at < area.byteLength; at += 16) {
      if (text(area.subarray(at, at + 8)) === 'RSD PTR ' && sum(area.subarray(at, at + 20)) === 0) found.push(0xe0000 + at);
    }
    expect(found).toEqual([0xe0000]);
  });

  // An independent reading of the tables by the ACPICA disassembler, when
  // it is installed (apt-get install acpica-tools); the byte checks above
  // do not need it.
  const iasl = (() => {
    try {
      execFileSync('iasl', ['-v'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
  it.skipIf(!iasl)('disassembles cleanly with iasl', () => {
    const memory = guest();
    const { tables } = writeAcpiTables(memory, platform);
    const dir = mkdtempSync(join(tmpdir(), 'tsvmm-acpi-'));
    try {
      for (const table of tables.slice(1)) {
        const file = join(dir, `${table.signature.toLowerCase()}.dat`);
        writeFileSync(file, memory.slice(table.address, table.size));
        execFileSync('iasl', ['-d', file], { stdio: 'pipe' });
      }
      const dsl = (name: string) => readFileSync(join(dir, `${name}.dsl`), 'utf8');
      expect(dsl('dsdt')).toMatch(/Device \(V001\)[\s\S]*"LNRO0005"[\s\S]*0xD0001000[\s\S]*0x00000006/);
      expect(dsl('dsdt')).toMatch(/Name \(_S5, Package \(0x02\)/);
      expect(dsl('dsdt')).toMatch(/Device \(RTC\)[\s\S]*EisaId \("PNP0B00"\)[\s\S]*0x0070,/);
      expect(dsl('facp')).toMatch(/Hardware Reduced \(V5\) : 1/);
      expect(dsl('facp')).toMatch(/Sleep Control Register[\s\S]*Address : 0000000000000600/);
      expect(dsl('apic')).toMatch(/Local Apic ID : 01/);
      for (const name of ['xsdt', 'facp', 'apic', 'dsdt']) expect(dsl(name)).not.toMatch(/Error|Invalid|Warning/i);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
