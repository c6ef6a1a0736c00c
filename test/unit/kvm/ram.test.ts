// Guest RAM allocation (a real anonymous mmap; no KVM needed).

import { describe, expect, it } from 'vitest';
import { allocateGuestRam, registerGuestRam } from '../../../src/memory/ram.js';
import { GuestMemoryError } from '../../../src/memory/guest-memory.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe('allocateGuestRam', () => {
  it('maps zeroed RAM and places regions one after another in it', () => {
    // A small stand-in for the x86 split: RAM below a hole, the rest above 4 GiB.
    const ram = allocateGuestRam(3 * MiB, [
      { guestAddress: 0, size: 2 * MiB },
      { guestAddress: 4 * GiB, size: 1 * MiB },
    ]);
    try {
      const { memory } = ram;
      expect(memory.regions).toEqual([
        { guestAddress: 0, size: 2 * MiB, hostOffset: 0 },
        { guestAddress: 4 * GiB, size: MiB, hostOffset: 2 * MiB },
      ]);
      expect(memory.size).toBe(3 * MiB);
      expect(memory.readU64(0x1000)).toBe(0n);
      memory.writeU32(4 * GiB + 16, 0xcafef00d);
      expect(memory.bytes[2 * MiB + 16]).toBe(0x0d);
      expect(memory.readU32(4 * GiB + 16)).toBe(0xcafef00d);
      expect(() => memory.readU8(2 * MiB)).toThrow(GuestMemoryError); // the hole
      expect(ram.hostAddress % 4096n).toBe(0n);
    } finally {
      ram.free();
    }
  });

  it('registers one KVM memory slot per region with the right host address', () => {
    const ram = allocateGuestRam(2 * MiB, [
      { guestAddress: 0, size: MiB }, { guestAddress: 4 * GiB, size: MiB },
    ]);
    const calls: [number, number | bigint, number | bigint, number | bigint][] = [];
    registerGuestRam({ setUserMemoryRegion: (...args) => { calls.push(args); } }, ram, 2);
    ram.free();
    expect(calls).toEqual([
      [2, 0, MiB, ram.hostAddress],
      [3, 4 * GiB, MiB, ram.hostAddress + BigInt(MiB)],
    ]);
  });

  it('explains bad sizes and layouts', () => {
    expect(() => allocateGuestRam(1000, [{ guestAddress: 0, size: 1000 }]))
      .toThrowError('guest RAM size 1000 must be a positive multiple of 4 KiB');
    expect(() => allocateGuestRam(8 * GiB, [{ guestAddress: 0, size: 8 * GiB }]))
      .toThrowError('guest RAM of 8192 MiB is too large: at most 4096 MiB is supported');
    expect(() => allocateGuestRam(2 * MiB, [{ guestAddress: 0, size: MiB }]))
      .toThrowError(`RAM regions add up to ${MiB} bytes, but ${2 * MiB} were requested`);
    expect(() => allocateGuestRam(2 * MiB, [{ guestAddress: MiB, size: MiB }, { guestAddress: 0, size: MiB }]))
      .toThrowError('RAM region at 0x0 overlaps or precedes the previous region (regions must be in increasing order)');
    expect(() => allocateGuestRam(2 * MiB, [{ guestAddress: 0x800, size: 2 * MiB }]))
      .toThrowError('RAM region at 0x800 (size 0x200000) must be page aligned and non-empty');
  });
});
