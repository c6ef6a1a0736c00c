import { describe, expect, it } from 'vitest';
import * as layout from '../../../src/arch/x86_64/layout.js';
import { BOOT_GDT_SIZE, TSS_LIMIT } from '../../../src/arch/x86_64/gdt.js';
import { BootConfigError } from '../../../src/arch/x86_64/errors.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe('ramRegions', () => {
  it('keeps small RAM in one region from 0', () => {
    expect(layout.ramRegions(512 * MiB)).toEqual([{ guestAddress: 0, size: 512 * MiB, hostOffset: 0 }]);
  });

  it('fills up to the MMIO gap exactly', () => {
    expect(layout.ramRegions(3 * GiB)).toEqual([{ guestAddress: 0, size: 0xc000_0000, hostOffset: 0 }]);
  });

  it('moves RAM beyond 3 GiB above 4 GiB, contiguous in the host buffer', () => {
    expect(layout.ramRegions(4 * GiB)).toEqual([
      { guestAddress: 0, size: 0xc000_0000, hostOffset: 0 },
      { guestAddress: 0x1_0000_0000, size: 1 * GiB, hostOffset: 0xc000_0000 },
    ]);
  });

  it.each([0, 8 * MiB, 512 * MiB + 1, Number.NaN])('rejects %s bytes', (size) => {
    expect(() => layout.ramRegions(size)).toThrow(BootConfigError);
  });

  it('gives the initramfs ceiling', () => {
    expect(layout.lowRamEnd(256 * MiB)).toBe(256 * MiB);
    expect(layout.lowRamEnd(8 * GiB)).toBe(0xc000_0000);
  });
});

describe('virtioMmioSlot', () => {
  it('places devices 4 KiB apart from 0xd0000000 with IRQs from 5', () => {
    expect(layout.virtioMmioSlot(0)).toEqual({ base: 0xd000_0000, size: 0x1000, irq: 5 });
    expect(layout.virtioMmioSlot(3)).toEqual({ base: 0xd000_3000, size: 0x1000, irq: 8 });
    expect(layout.virtioMmioSlot(18)).toEqual({ base: 0xd001_2000, size: 0x1000, irq: 23 });
  });

  it('runs out of IOAPIC pins after 19 devices', () => {
    expect(() => layout.virtioMmioSlot(19)).toThrow(/at most 19 devices/);
  });
});

describe('the fixed map', () => {
  it('has no overlapping boot structures, all below the EBDA', () => {
    const ranges: [string, number, number][] = [
      ['gdt', layout.BOOT_GDT_START, BOOT_GDT_SIZE],
      ['idt', layout.BOOT_IDT_START, 8],
      ['tss', layout.BOOT_TSS_START, TSS_LIMIT + 1],
      ['zero page', layout.ZERO_PAGE_START, 0x1000],
      ['stack', layout.BOOT_STACK_POINTER - 0x800, 0x800],
      ['pml4', layout.PML4_START, 0x1000],
      ['pdpt', layout.PDPT_START, 0x1000],
      ['pd', layout.PD_START, layout.PD_COUNT * 0x1000],
      ['cmdline', layout.CMDLINE_START, layout.CMDLINE_MAX_SIZE],
    ];
    ranges.sort((a, b) => a[1] - b[1]);
    for (let i = 1; i < ranges.length; i++) {
      const [prevName, prevStart, prevSize] = ranges[i - 1]!;
      expect(prevStart + prevSize, `${prevName} runs into ${ranges[i]![0]}`).toBeLessThanOrEqual(ranges[i]![1]);
    }
    const [, lastStart, lastSize] = ranges[ranges.length - 1]!;
    expect(lastStart + lastSize).toBeLessThanOrEqual(layout.MPTABLE_START);
  });

  it('keeps KVM and device addresses inside the MMIO gap', () => {
    for (const address of [layout.VIRTIO_MMIO_START, layout.IOAPIC_START, layout.LAPIC_START,
      layout.KVM_TSS_ADDRESS, layout.KVM_IDENTITY_MAP_ADDRESS]) {
      expect(address).toBeGreaterThanOrEqual(layout.MMIO_GAP_START);
      expect(address).toBeLessThan(layout.MMIO_GAP_END);
    }
    expect(layout.KVM_IDENTITY_MAP_ADDRESS + 0x1000).toBeLessThanOrEqual(layout.KVM_TSS_ADDRESS);
    expect(layout.KVM_IDENTITY_MAP_ADDRESS).toBeGreaterThanOrEqual(layout.LAPIC_START + 0x1000);
    expect(layout.KVM_TSS_ADDRESS + 3 * 0x1000).toBeLessThanOrEqual(layout.MMIO_GAP_END);
    const lastVirtio = layout.virtioMmioSlot(layout.VIRTIO_MMIO_MAX_DEVICES - 1);
    expect(lastVirtio.base + lastVirtio.size).toBeLessThanOrEqual(layout.IOAPIC_START);
  });
});
