import { describe, expect, it } from 'vitest';
import {
  amlBuffer, amlDevice, amlEisaId, amlInteger, amlName, amlPackage, amlScope, amlString, extendedInterrupt, ioPorts,
  memory32Fixed, nameString, pkgLength, resourceTemplate,
} from '../../../../src/arch/x86_64/acpi/aml.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

describe('AML encoder (ACPI 6.5 chapter 20)', () => {
  it('encodes PkgLength in 1 to 4 bytes, counting its own bytes (20.2.4)', () => {
    expect(hex(pkgLength(0))).toBe('01');
    expect(hex(pkgLength(62))).toBe('3f'); // the largest one-byte length: 62 + 1
    expect(hex(pkgLength(63))).toBe('4104'); // 63 + 2 = 0x41: low nibble 1, then 0x04
    expect(hex(pkgLength(0xffd))).toBe('4fff'); // 0xfff, the largest two-byte length
    expect(hex(pkgLength(0xffe))).toBe('810001'); // 0x1001: nibble 1, then 0x00, 0x01
    expect(hex(pkgLength(5003))).toBe('8e3801'); // iasl: Buffer (5000) {...} is 11 8e 38 01 0b 88 13 ...
    expect(hex(pkgLength(0x100000))).toBe('c4000001'); // 0x100004 needs four bytes
    expect(() => pkgLength(2 ** 28)).toThrow(/too long/);
  });

  it('encodes names, with the root prefix and multi-segment paths (20.2.2)', () => {
    expect(hex(nameString('_HID'))).toBe('5f484944');
    expect(hex(nameString('_SB'))).toBe('5f53425f'); // padded with '_'
    expect(hex(nameString('\\_SB_'))).toBe('5c5f53425f');
    expect(hex(nameString('_SB_.COM1'))).toBe('2e5f53425f434f4d31');
    expect(hex(nameString('\\_SB_.PCI0.S08_'))).toBe('5c2f035f53425f504349305330385f');
    expect(() => nameString('1ABC')).toThrow(/invalid AML name/);
    expect(() => nameString('ABCDE')).toThrow(/invalid AML name/);
    expect(() => nameString('abcd')).toThrow(/invalid AML name/);
  });

  it('encodes integers in their shortest form (20.2.3)', () => {
    expect(hex(amlInteger(0))).toBe('00'); // ZeroOp
    expect(hex(amlInteger(1))).toBe('01'); // OneOp
    expect(hex(amlInteger(5))).toBe('0a05');
    expect(hex(amlInteger(0x1234))).toBe('0b3412');
    expect(hex(amlInteger(0xd000_0000))).toBe('0c000000d0');
    expect(hex(amlInteger(0x1_0000_0000n))).toBe('0e0000000001000000');
    expect(() => amlInteger(-1)).toThrow(/out of range/);
  });

  it('encodes strings and EISA ids', () => {
    expect(hex(amlString('LNRO0005'))).toBe('0d4c4e524f3030303500');
    // ASL EisaId ("PNP0501") and ("PNP0303"), as iasl compiles them
    expect(hex(amlEisaId('PNP0501'))).toBe('0c41d00501');
    expect(hex(amlEisaId('PNP0303'))).toBe('0c41d00303');
    expect(() => amlEisaId('pnp0501')).toThrow(/invalid EISA id/);
  });

  it('encodes Name, Package and Buffer', () => {
    // Name (_S5, Package () { 5 }), as iasl compiles it
    expect(hex(amlName('_S5_', amlPackage([amlInteger(5)])))).toBe('085f53355f1204010a05');
    expect(hex(amlBuffer(Uint8Array.of(1, 2)))).toBe('11050a020102');
    expect(hex(amlPackage([]))).toBe('120200');
  });

  it('encodes resource descriptors (6.4)', () => {
    // IO (Decode16, 0x3F8, 0x3F8, 1, 8)
    expect(hex(ioPorts(0x3f8, 8))).toBe('4701f803f8030108');
    // Memory32Fixed (ReadWrite, 0xD0000000, 0x1000)
    expect(hex(memory32Fixed(0xd000_0000, 0x1000))).toBe('86' + '0900' + '01' + '000000d0' + '00100000');
    // Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { 5 }
    expect(hex(extendedInterrupt(5, { edge: true, activeLow: false, shared: false }))).toBe('890600030105000000');
    // Interrupt (ResourceConsumer, Level, ActiveLow, Shared) { 16 }
    expect(hex(extendedInterrupt(16, { edge: false, activeLow: true, shared: true }))).toBe('8906000d0110000000');
    // The template ends with an End Tag whose checksum 0 means "none".
    expect(hex(resourceTemplate([ioPorts(0x60, 1)]))).toBe('110d0a0a' + '4701600060000101' + '7900');
  });

  it('nests Scope and Device the way iasl does', () => {
    // Scope (\_SB) { Device (COM1) { Name (_HID, EisaId ("PNP0501")) } }
    const aml = amlScope('_SB_', [amlDevice('COM1', [amlName('_HID', amlEisaId('PNP0501'))])]);
    expect(hex(aml)).toBe('1016' + '5f53425f' + '5b820f' + '434f4d31' + '085f484944' + '0c41d00501');
  });
});
