import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../../src/memory/guest-memory.js';
import { writeBootMemory } from '../../../src/arch/x86_64/boot-memory.js';
import { ramRegions, virtioMmioSlot } from '../../../src/arch/x86_64/layout.js';
import { ImageFile } from '../../../src/vm/image-file.js';
import { images } from '../../helpers/guest-images.js';
import { inMemory, makeBzImage, makeElf, pattern } from './synthetic-images.js';

const MiB = 1024 * 1024;

function guest(size: number): GuestMemory {
  return GuestMemory.allocate(size, ramRegions(size));
}

describe('writeBootMemory', () => {
  it('lays out an ELF kernel, cmdline, initramfs, zero page, GDT, page tables and MP table', () => {
    const memory = guest(64 * MiB);
    const kernel = makeElf({ entry: 0x1000000n, segments: [{ paddr: 0x1000000n, data: pattern(0x1000), memsz: 0x3000n }] });
    const initramfs = pattern(0x1800, 2);
    const boot = writeBootMemory(memory, { kernel: inMemory(kernel), initramfs: inMemory(initramfs), cmdline: 'console=ttyS0 -- init', ramSize: 64 * MiB, cpuCount: 2 });

    expect(boot.entry).toBe(0x1000000);
    expect(boot.zeroPage).toBe(0x7000);
    expect(boot.initramfs).toEqual({ address: 64 * MiB - 0x2000, size: 0x1800 });
    expect(memory.slice(boot.initramfs!.address, 0x1800)).toEqual(initramfs);
    expect(new TextDecoder().decode(memory.slice(0x20000, 22))).toBe('console=ttyS0 -- init\0');
    expect(memory.readU32(0x7000 + 0x202)).toBe(0x53726448);
    expect(memory.readU32(0x7000 + 0x228)).toBe(0x20000);
    expect(memory.readU32(0x7000 + 0x218)).toBe(64 * MiB - 0x2000);
    expect(memory.readU32(0x7000 + 0x21c)).toBe(0x1800);
    expect(memory.readU8(0x7000 + 0x1e8)).toBe(3);
    expect(memory.readU64(0x7000 + 0x2d0 + 2 * 20 + 8)).toBe(BigInt(63 * MiB));
    expect(memory.readU64(0x510)).toBe(0x00af_9b00_0000_ffffn);
    expect(memory.readU64(0x9000)).toBe(0xa003n);
    expect(memory.readU32(0x9fc00)).toBe(0x5f504d5f); // "_MP_"
  });

  it('writes ACPI tables when asked and points the zero page at the RSDP, keeping the MP table', () => {
    const memory = guest(64 * MiB);
    const kernel = inMemory(makeElf({ entry: 0x1000000n, segments: [{ paddr: 0x1000000n, data: pattern(0x100) }] }));
    const boot = writeBootMemory(memory, {
      kernel, cmdline: '', ramSize: 64 * MiB, cpuCount: 3,
      acpi: { serial: true, virtioSlots: [virtioMmioSlot(0)] },
    });
    expect(boot.acpi?.rsdpAddress).toBe(0xe0000);
    expect(memory.readU64(0x7000 + 0x070)).toBe(0xe0000n); // boot_params.acpi_rsdp_addr
    expect(new TextDecoder().decode(memory.slice(0xe0000, 8))).toBe('RSD PTR ');
    const madt = boot.acpi!.tables.find((t) => t.signature === 'APIC')!;
    expect(madt.size).toBe(44 + 3 * 8 + 12); // the vCPU count reached the MADT
    expect(memory.readU32(0x9fc00)).toBe(0x5f504d5f); // "_MP_" still there for kernels without ACPI
  });

  it('writes no ACPI tables unless asked', () => {
    const memory = guest(64 * MiB);
    const kernel = inMemory(makeElf({ entry: 0x1000000n, segments: [{ paddr: 0x1000000n, data: pattern(0x100) }] }));
    const boot = writeBootMemory(memory, { kernel, cmdline: '', ramSize: 64 * MiB, cpuCount: 1 });
    expect(boot.acpi).toBeUndefined();
    expect(memory.readU64(0x7000 + 0x070)).toBe(0n);
    expect(memory.slice(0xe0000, 36)).toEqual(new Uint8Array(36));
  });

  it('copies a bzImage header into the zero page and honours its cmdline_size', () => {
    const memory = guest(64 * MiB);
    const kernel = inMemory(makeBzImage({ payload: pattern(0x800), cmdlineSize: 10 }));
    const boot = writeBootMemory(memory, { kernel, cmdline: 'console=S0', ramSize: 64 * MiB, cpuCount: 1 });
    expect(boot.entry).toBe(0x100200);
    expect(boot.initramfs).toBeUndefined();
    expect(memory.readU32(0x7000 + 0x238)).toBe(10);
    expect(memory.readU32(0x7000 + 0x218)).toBe(0);
    expect(() => writeBootMemory(memory, { kernel, cmdline: 'console=ttyS0', ramSize: 64 * MiB, cpuCount: 1 }))
      .toThrow(/13 bytes, but this kernel accepts at most 10/);
  });

  it('fails clearly when the initramfs does not fit', () => {
    const memory = guest(64 * MiB);
    const kernel = inMemory(makeElf({ entry: 0x1000000n, segments: [{ paddr: 0x1000000n, data: pattern(16), memsz: 0x2f00000n }] }));
    expect(() => writeBootMemory(memory, { kernel, initramfs: inMemory(pattern(0x200000)), cmdline: '', ramSize: 64 * MiB, cpuCount: 1 }))
      .toThrow(/initramfs of 2\.0 MiB does not fit/);
  });

  it.skipIf(!existsSync(images.vmlinux) || !existsSync(images.initramfs))('prepares the built guest kernel and initramfs, read from their files', () => {
    const memory = guest(128 * MiB);
    const initramfs = new Uint8Array(readFileSync(images.initramfs));
    const kernelFile = ImageFile.open(images.vmlinux, '--kernel');
    const initramfsFile = ImageFile.open(images.initramfs, '--initramfs');
    const boot = writeBootMemory(memory, {
      kernel: kernelFile, kernelName: images.vmlinux,
      initramfs: initramfsFile, cmdline: 'console=ttyS0', ramSize: 128 * MiB, cpuCount: 2,
    });
    kernelFile.close();
    initramfsFile.close();
    expect(boot.entry).toBe(boot.kernel.entry);
    expect(boot.kernel.kernelStart).toBe(0x1000000);
    expect(boot.initramfs!.address % 4096).toBe(0);
    expect(boot.initramfs!.address).toBeGreaterThanOrEqual(boot.kernel.kernelEnd);
    expect(boot.initramfs!.address + initramfs.byteLength).toBeLessThanOrEqual(128 * MiB);
    expect(memory.slice(boot.initramfs!.address, 2)).toEqual(new Uint8Array([0x1f, 0x8b])); // gzip magic
    expect(Buffer.compare(memory.slice(boot.initramfs!.address, initramfs.byteLength), initramfs)).toBe(0); // all of it (toEqual is slow at 5 MB)
  });
});
