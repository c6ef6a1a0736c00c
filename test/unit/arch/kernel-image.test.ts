import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../../src/memory/guest-memory.js';
import { KernelImageError } from '../../../src/arch/x86_64/errors.js';
import { loadKernelImage } from '../../../src/arch/x86_64/kernel-image.js';
import { ImageFile } from '../../../src/vm/image-file.js';
import { images } from '../../helpers/guest-images.js';
import { inMemory, loggingReads, makeBzImage, makeElf, pattern } from './synthetic-images.js';

const MiB = 1024 * 1024;

describe('loadKernelImage', () => {
  it('recognises an ELF by content', () => {
    const memory = GuestMemory.allocate(4 * MiB);
    const image = makeElf({ entry: 0x100000n, segments: [{ paddr: 0x100000n, data: pattern(32) }] });
    const loaded = loadKernelImage(memory, inMemory(image), 'bzImage-looking-name');
    expect(loaded.format).toBe('elf');
    expect(loaded.setupHeader).toBeUndefined();
  });

  it('recognises a bzImage by content', () => {
    const memory = GuestMemory.allocate(32 * MiB);
    const loaded = loadKernelImage(memory, inMemory(makeBzImage({ payload: pattern(64) })), 'vmlinux');
    expect(loaded.format).toBe('bzImage');
    expect(loaded.entry).toBe(0x100200);
    expect(loaded.setupHeader?.byteLength).toBe(0x26c - 0x1f1);
  });

  it('rejects anything else, naming the file', () => {
    const memory = GuestMemory.allocate(4 * MiB);
    const call = () => loadKernelImage(memory, inMemory(new TextEncoder().encode('#!/bin/sh\necho hi\n')), '/tmp/k');
    expect(call).toThrow(KernelImageError);
    expect(call).toThrow(/^\/tmp\/k is neither an ELF vmlinux nor a bzImage/);
  });

  it('prefixes loader errors with the file name', () => {
    const memory = GuestMemory.allocate(4 * MiB);
    const image = makeElf({ entry: 0x100000n, segments: [{ paddr: 0x100000n, data: pattern(32) }], machine: 40 });
    expect(() => loadKernelImage(memory, inMemory(image), 'arm.elf')).toThrow(/^arm\.elf: ELF kernel is for machine 40/);
  });

  it('reads an ELF\'s first bytes once, then its PT_LOAD bytes and nothing else', () => {
    const memory = GuestMemory.allocate(4 * MiB);
    const code = pattern(0x3000, 4);
    const image = makeElf({
      entry: 0x100000n,
      segments: [
        { paddr: 0x100000n, data: code },
        { paddr: 0x300000n, data: pattern(0x2000), type: 4 }, // PT_NOTE: not loaded, so not read
      ],
    });
    const { source, reads } = loggingReads(inMemory(image));
    loadKernelImage(memory, source);
    const codeOffset = 64 + 2 * 56;
    expect(reads).toEqual([[0, 1024], [codeOffset, 0x3000]]); // headers from the first read; the segment straight to RAM
    expect(memory.slice(0x100000, 0x3000)).toEqual(code);
  });

  it('reads a bzImage\'s first bytes once, then its protected-mode part and nothing of its setup code', () => {
    const memory = GuestMemory.allocate(32 * MiB);
    const payload = pattern(0x2000, 6);
    const { source, reads } = loggingReads(inMemory(makeBzImage({ setupSects: 30, payload })));
    loadKernelImage(memory, source);
    expect(reads).toEqual([[0, 1024], [31 * 512, 0x2000]]);
    expect(memory.slice(0x100000, 0x2000)).toEqual(payload);
  });
});

// The project's guest kernel, once guest-images/out has been built, read
// from its file as the VM reads it.
function loadFile(memory: GuestMemory, path: string) {
  const file = ImageFile.open(path, '--kernel');
  try {
    return loadKernelImage(memory, file, path);
  } finally {
    file.close();
  }
}

describe('loadKernelImage with the built guest kernel', () => {
  it.skipIf(!existsSync(images.vmlinux))('loads vmlinux at its physical addresses', () => {
    const file = new Uint8Array(readFileSync(images.vmlinux));
    const memory = GuestMemory.allocate(64 * MiB);
    const loaded = loadFile(memory, images.vmlinux);
    const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
    const firstSegmentOffset = Number(view.getBigUint64(64 + 8, true));
    expect(loaded.format).toBe('elf');
    expect(loaded.entry).toBe(Number(view.getBigUint64(24, true))); // e_entry is physical (phys_startup_64)
    expect(loaded.kernelStart).toBe(0x1000000); // LOAD_PHYSICAL_ADDR, 16 MiB
    expect(loaded.entry).toBeGreaterThanOrEqual(loaded.kernelStart);
    expect(loaded.entry).toBeLessThan(loaded.kernelStart + 0x200000);
    expect(loaded.kernelEnd).toBeGreaterThan(loaded.kernelStart);
    expect(memory.slice(0x1000000, 256)).toEqual(file.subarray(firstSegmentOffset, firstSegmentOffset + 256));
  });

  it.skipIf(!existsSync(images.bzImage))('loads bzImage at 1 MiB', () => {
    const file = new Uint8Array(readFileSync(images.bzImage));
    const memory = GuestMemory.allocate(64 * MiB);
    const loaded = loadFile(memory, images.bzImage);
    const setupBytes = ((file[0x1f1] || 4) + 1) * 512;
    expect(loaded.format).toBe('bzImage');
    expect(loaded.entry).toBe(0x100200);
    expect(loaded.header!.xloadflags & 1).toBe(1);
    expect(loaded.kernelEnd).toBeGreaterThanOrEqual(0x100000 + file.byteLength - setupBytes);
    expect(memory.slice(0x100000, 512)).toEqual(file.subarray(setupBytes, setupBytes + 512));
    expect(loaded.setupHeader).toEqual(file.subarray(0x1f1, 0x202 + file[0x201]!));
  });
});
