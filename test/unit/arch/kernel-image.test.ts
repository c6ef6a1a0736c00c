import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../../src/memory/guest-memory.js';
import { KernelImageError } from '../../../src/arch/x86_64/errors.js';
import { loadKernelImage } from '../../../src/arch/x86_64/kernel-image.js';
import { images } from '../../helpers/guest-images.js';
import { makeBzImage, makeElf, pattern } from './synthetic-images.js';

const MiB = 1024 * 1024;

describe('loadKernelImage', () => {
  it('recognises an ELF by content', () => {
    const memory = GuestMemory.allocate(4 * MiB);
    const image = makeElf({ entry: 0x100000n, segments: [{ paddr: 0x100000n, data: pattern(32) }] });
    const loaded = loadKernelImage(memory, image, 'bzImage-looking-name');
    expect(loaded.format).toBe('elf');
    expect(loaded.setupHeader).toBeUndefined();
  });

  it('recognises a bzImage by content', () => {
    const memory = GuestMemory.allocate(32 * MiB);
    const loaded = loadKernelImage(memory, makeBzImage({ payload: pattern(64) }), 'vmlinux');
    expect(loaded.format).toBe('bzImage');
    expect(loaded.entry).toBe(0x100200);
    expect(loaded.setupHeader?.byteLength).toBe(0x26c - 0x1f1);
  });

  it('rejects anything else, naming the file', () => {
    const memory = GuestMemory.allocate(4 * MiB);
    const call = () => loadKernelImage(memory, new TextEncoder().encode('#!/bin/sh\necho hi\n'), '/tmp/k');
    expect(call).toThrow(KernelImageError);
    expect(call).toThrow(/^\/tmp\/k is neither an ELF vmlinux nor a bzImage/);
  });

  it('prefixes loader errors with the file name', () => {
    const memory = GuestMemory.allocate(4 * MiB);
    const image = makeElf({ entry: 0x100000n, segments: [{ paddr: 0x100000n, data: pattern(32) }], machine: 40 });
    expect(() => loadKernelImage(memory, image, 'arm.elf')).toThrow(/^arm\.elf: ELF kernel is for machine 40/);
  });
});

// The project's guest kernel, once guest-images/out has been built.
describe('loadKernelImage with the built guest kernel', () => {
  it.skipIf(!existsSync(images.vmlinux))('loads vmlinux at its physical addresses', () => {
    const file = new Uint8Array(readFileSync(images.vmlinux));
    const memory = GuestMemory.allocate(64 * MiB);
    const loaded = loadKernelImage(memory, file, images.vmlinux);
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
    const loaded = loadKernelImage(memory, file, images.bzImage);
    const setupBytes = ((file[0x1f1] || 4) + 1) * 512;
    expect(loaded.format).toBe('bzImage');
    expect(loaded.entry).toBe(0x100200);
    expect(loaded.header!.xloadflags & 1).toBe(1);
    expect(loaded.kernelEnd).toBeGreaterThanOrEqual(0x100000 + file.byteLength - setupBytes);
    expect(memory.slice(0x100000, 512)).toEqual(file.subarray(setupBytes, setupBytes + 512));
    expect(loaded.setupHeader).toEqual(file.subarray(0x1f1, 0x202 + file[0x201]!));
  });
});
