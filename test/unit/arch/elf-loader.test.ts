import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../../src/memory/guest-memory.js';
import { loadElfKernel } from '../../../src/arch/x86_64/elf-loader.js';
import { KernelImageError } from '../../../src/arch/x86_64/errors.js';
import { inMemory, makeElf, pattern } from './synthetic-images.js';

const MiB = 1024 * 1024;

describe('loadElfKernel', () => {
  it('copies each PT_LOAD segment to p_paddr and zeroes the bss tail', () => {
    const memory = GuestMemory.allocate(8 * MiB);
    memory.fill(0x220000, 0x100, 0xee); // stale bytes where the bss goes
    const text = pattern(0x300, 7);
    const data = pattern(0x80, 9);
    const image = makeElf({
      entry: 0x200000n,
      segments: [
        { paddr: 0x200000n, vaddr: 0xffffffff81000000n, data: text },
        { paddr: 0x220000n - 0x80n, vaddr: 0xffffffff81020000n - 0x80n, data, memsz: 0x80n + 0x100n },
        { paddr: 0x300000n, data: pattern(0x10), type: 4 }, // PT_NOTE: not loaded
      ],
    });
    const loaded = loadElfKernel(memory, inMemory(image));
    expect(loaded).toEqual({ entry: 0x200000, kernelStart: 0x200000, kernelEnd: 0x220100 });
    expect(memory.slice(0x200000, 0x300)).toEqual(text);
    expect(memory.slice(0x220000 - 0x80, 0x80)).toEqual(data);
    expect(memory.slice(0x220000, 0x100)).toEqual(new Uint8Array(0x100));
    expect(memory.readU8(0x300000)).toBe(0);
  });

  it('translates a virtual entry point through its segment', () => {
    const memory = GuestMemory.allocate(4 * MiB);
    const image = makeElf({
      entry: 0xffffffff81000040n,
      segments: [{ paddr: 0x100000n, vaddr: 0xffffffff81000000n, data: pattern(0x100) }],
    });
    expect(loadElfKernel(memory, inMemory(image)).entry).toBe(0x100040);
  });

  const memory = GuestMemory.allocate(4 * MiB);
  const good = { entry: 0x100000n, segments: [{ paddr: 0x100000n, data: pattern(0x40) }] };

  it.each([
    ['32-bit class', makeElf({ ...good, elfClass: 1 }), /not 64-bit/],
    ['another machine', makeElf({ ...good, machine: 183 }), /machine 183, not x86_64/],
    ['a relocatable object', makeElf({ ...good, type: 1 }), /type 1, not ET_EXEC/],
    ['garbage', pattern(200), /not an ELF file/],
    ['a truncated header', makeElf(good).subarray(0, 40), /truncated/],
    ['truncated segment data', makeElf(good).subarray(0, 64 + 56 + 10), /runs past the end of the file/],
    ['a segment outside RAM', makeElf({ entry: 0x100000n, segments: [{ paddr: 0x3ff000n, data: pattern(0x2000) }] }), /outside guest RAM/],
    ['a segment at a 64-bit address', makeElf({ entry: 0x100000n, segments: [{ paddr: 0xffff_ffff_ffff_0000n, data: pattern(0x10) }] }), /outside guest RAM/],
    ['a segment below 1 MiB', makeElf({ entry: 0x7000n, segments: [{ paddr: 0x7000n, data: pattern(0x10) }] }), /below 1 MiB/],
    ['an entry outside every segment', makeElf({ ...good, entry: 0x900000n }), /entry point 0x900000 is in no loadable segment/],
    ['no PT_LOAD', makeElf({ ...good, segments: [{ paddr: 0x100000n, data: pattern(4), type: 4 }] }), /no PT_LOAD/],
  ])('rejects %s with KernelImageError', (_name, image, message) => {
    expect(() => loadElfKernel(memory, inMemory(image))).toThrow(KernelImageError);
    expect(() => loadElfKernel(memory, inMemory(image))).toThrow(message);
  });
});
