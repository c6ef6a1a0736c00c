import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../../src/memory/guest-memory.js';
import { BootConfigError } from '../../../src/arch/x86_64/errors.js';
import { loadInitramfs, placeInitramfs } from '../../../src/arch/x86_64/initramfs.js';
import { inMemory, pattern } from './synthetic-images.js';

const MiB = 1024 * 1024;

describe('placeInitramfs', () => {
  it('goes page-aligned at the top of low RAM', () => {
    expect(placeInitramfs({ size: 0x1234, kernelEnd: 0x2000000, initrdAddrMax: 0x7fffffff, lowRamEnd: 64 * MiB }))
      .toBe(64 * MiB - 0x2000);
  });

  it('stays below initrd_addr_max (inclusive)', () => {
    expect(placeInitramfs({ size: 0x1000, kernelEnd: 0x2000000, initrdAddrMax: 0x7fffffff, lowRamEnd: 0xc000_0000 }))
      .toBe(0x8000_0000 - 0x1000);
  });

  it('may end right at the kernel end', () => {
    expect(placeInitramfs({ size: 0x3000, kernelEnd: 0x1000800, initrdAddrMax: 0xffffffff, lowRamEnd: 0x1004000 }))
      .toBe(0x1001000);
  });

  it('fails when it would overlap the kernel', () => {
    const call = () => placeInitramfs({ size: 0x3001, kernelEnd: 0x1000800, initrdAddrMax: 0xffffffff, lowRamEnd: 0x1004000 });
    expect(call).toThrow(BootConfigError);
    expect(call).toThrow(/does not fit between the kernel's end \(0x1001000\) and 0x1004000/);
  });

  it('rejects an empty initramfs', () => {
    expect(() => placeInitramfs({ size: 0, kernelEnd: 0, initrdAddrMax: 0xffffffff, lowRamEnd: MiB })).toThrow(/empty/);
  });

  it('reads the bytes there', () => {
    const memory = GuestMemory.allocate(16 * MiB);
    const image = pattern(0x2345, 5);
    const placed = loadInitramfs(memory, inMemory(image), { kernelEnd: 2 * MiB, initrdAddrMax: 0x7fffffff, lowRamEnd: 16 * MiB });
    expect(placed).toEqual({ address: 16 * MiB - 0x3000, size: 0x2345 });
    expect(memory.slice(placed.address, image.byteLength)).toEqual(image);
  });
});
