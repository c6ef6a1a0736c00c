import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../../src/memory/guest-memory.js';
import { isBzImage, loadBzImage } from '../../../src/arch/x86_64/bzimage-loader.js';
import { KernelImageError } from '../../../src/arch/x86_64/errors.js';
import { inMemory, makeBzImage, pattern } from './synthetic-images.js';

const MiB = 1024 * 1024;

describe('loadBzImage', () => {
  it('copies the protected-mode part to 1 MiB and enters at +0x200', () => {
    const memory = GuestMemory.allocate(32 * MiB);
    const payload = pattern(0x1800, 3);
    const image = makeBzImage({ setupSects: 4, payload, initSize: 0x400000 });
    const loaded = loadBzImage(memory, inMemory(image));
    expect(loaded.entry).toBe(0x100200);
    expect(loaded.kernelStart).toBe(0x100000);
    // relocatable, loaded below pref_address 16 MiB: runs from 16 MiB, needs init_size from there
    expect(loaded.kernelEnd).toBe(0x1000000 + 0x400000);
    expect(memory.slice(0x100000, payload.byteLength)).toEqual(payload);
    expect(loaded.header).toMatchObject({ setupSects: 4, version: 0x020f, cmdlineSize: 2047, initrdAddrMax: 0x7fffffff });
  });

  it('returns the setup header from 0x1f1 to 0x202 + byte[0x201]', () => {
    const memory = GuestMemory.allocate(32 * MiB);
    const image = makeBzImage({ payload: pattern(0x1000) });
    const { setupHeader } = loadBzImage(memory, inMemory(image));
    expect(setupHeader.byteLength).toBe(0x26c - 0x1f1);
    expect(setupHeader).toEqual(image.subarray(0x1f1, 0x26c));
    expect(setupHeader[0x202 - 0x1f1]).toBe(0x48); // 'H' of HdrS
  });

  it('treats setup_sects 0 as 4', () => {
    const memory = GuestMemory.allocate(32 * MiB);
    const payload = pattern(0x400, 11);
    const image = makeBzImage({ setupSects: 0, payload });
    expect(image.byteLength).toBe(5 * 512 + 0x400);
    loadBzImage(memory, inMemory(image));
    expect(memory.slice(0x100000, 0x400)).toEqual(payload);
  });

  it('computes the decompression window of a non-relocatable kernel from pref_address', () => {
    const memory = GuestMemory.allocate(48 * MiB);
    const image = makeBzImage({ relocatable: false, prefAddress: 0x1000000n, initSize: 0xf51000, payload: pattern(0x100) });
    expect(loadBzImage(memory, inMemory(image)).kernelEnd).toBe(0x1f51000);
  });

  it('fails when init_size does not fit in RAM', () => {
    const memory = GuestMemory.allocate(24 * MiB);
    const image = makeBzImage({ initSize: 0x1000000, payload: pattern(0x100) });
    expect(() => loadBzImage(memory, inMemory(image))).toThrow(/needs guest RAM up to 0x2000000.*give the VM more memory/);
  });

  const memory = GuestMemory.allocate(32 * MiB);
  it.each([
    ['a 32-bit kernel', makeBzImage({ xloadflags: 0, payload: pattern(16) }), /XLF_KERNEL_64/],
    ['an old protocol', makeBzImage({ version: 0x0206, payload: pattern(16) }), /boot protocol 2\.06; .* 2\.12/],
    ['a zImage', makeBzImage({ loadflags: 0, payload: pattern(16) }), /zImage/],
    ['a file without payload', makeBzImage({ payload: new Uint8Array(0) }), /truncated/],
    ['garbage', pattern(4096), /not a bzImage/],
  ])('rejects %s', (_name, image, message) => {
    expect(() => loadBzImage(memory, inMemory(image))).toThrow(KernelImageError);
    expect(() => loadBzImage(memory, inMemory(image))).toThrow(message);
  });

  it('rejects a file that ends inside the header fields it reads, whatever its jump says', () => {
    const image = makeBzImage({ payload: pattern(16) }).slice(0, 0x220);
    image[0x201] = 0x10; // a header "ending" at 0x212
    expect(() => loadBzImage(memory, inMemory(image))).toThrow(KernelImageError);
    expect(() => loadBzImage(memory, inMemory(image))).toThrow('bzImage is truncated inside its setup header (544 bytes)');
  });

  it('detects the magic', () => {
    expect(isBzImage(makeBzImage({ payload: pattern(4) }))).toBe(true);
    expect(isBzImage(new Uint8Array(0x300))).toBe(false);
    expect(isBzImage(new Uint8Array(10))).toBe(false);
  });
});
