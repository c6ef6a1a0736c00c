import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../../src/memory/guest-memory.js';
import { IDENTITY_MAPPED_BYTES, writeIdentityPageTables } from '../../../src/arch/x86_64/page-tables.js';

describe('identity page tables', () => {
  const memory = GuestMemory.allocate(0x100000);
  memory.fill(0x9000, 0x6000, 0xcc);
  writeIdentityPageTables(memory);

  it('points PML4[0] at the PDPT and nothing else', () => {
    expect(memory.readU64(0x9000)).toBe(0xa003n);
    expect(memory.slice(0x9008, 0xff8)).toEqual(new Uint8Array(0xff8));
  });

  it('points four PDPT entries at four page directories', () => {
    expect([0, 1, 2, 3, 4].map((i) => memory.readU64(0xa000 + i * 8))).toEqual([0xb003n, 0xc003n, 0xd003n, 0xe003n, 0n]);
  });

  it('maps 2 MiB pages 1:1 up to 4 GiB', () => {
    expect(memory.readU64(0xb000)).toBe(0x83n);
    expect(memory.readU64(0xb008)).toBe(0x20_0083n);
    expect(memory.readU64(0xbff8)).toBe(0x3fe0_0083n);
    expect(memory.readU64(0xc000)).toBe(0x4000_0083n);
    expect(memory.readU64(0xeff8)).toBe(0xffe0_0083n);
    expect(IDENTITY_MAPPED_BYTES).toBe(4 * 1024 * 1024 * 1024);
  });
});
