import { describe, expect, it } from 'vitest';
import { buildBootParams } from '../../../src/arch/x86_64/boot-params.js';
import { E820_RAM, E820_RESERVED, e820Map, formatE820 } from '../../../src/arch/x86_64/e820.js';
import { makeBzImage, pattern } from './synthetic-images.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

function view(page: Uint8Array): DataView {
  return new DataView(page.buffer, page.byteOffset, page.byteLength);
}

describe('e820Map', () => {
  it('describes 512 MiB', () => {
    expect(e820Map(512 * MiB)).toEqual([
      { address: 0, size: 0x9fc00, type: E820_RAM },
      { address: 0x9fc00, size: 0x100000 - 0x9fc00, type: E820_RESERVED },
      { address: 0x100000, size: 512 * MiB - 0x100000, type: E820_RAM },
    ]);
  });

  it('adds the RAM above 4 GiB', () => {
    const map = e820Map(5 * GiB);
    expect(map[2]).toEqual({ address: 0x100000, size: 0xc000_0000 - 0x100000, type: E820_RAM });
    expect(map[3]).toEqual({ address: 0x1_0000_0000, size: 2 * GiB, type: E820_RAM });
  });

  it('formats like the kernel log', () => {
    expect(formatE820(e820Map(64 * MiB))).toEqual([
      'BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable',
      'BIOS-e820: [mem 0x000000000009fc00-0x00000000000fffff] reserved',
      'BIOS-e820: [mem 0x0000000000100000-0x0000000003ffffff] usable',
    ]);
  });
});

describe('buildBootParams', () => {
  const e820 = e820Map(5 * GiB);

  it('synthesizes a setup header for an ELF vmlinux', () => {
    const page = buildBootParams({ cmdlineAddress: 0x20000, e820 });
    const v = view(page);
    expect(page.byteLength).toBe(4096);
    expect(v.getUint16(0x1fe, true)).toBe(0xaa55); // boot_flag
    expect(v.getUint32(0x202, true)).toBe(0x53726448); // "HdrS"
    expect(String.fromCharCode(...page.subarray(0x202, 0x206))).toBe('HdrS');
    expect(v.getUint16(0x206, true)).toBe(0x020f); // version
    expect(page[0x210]).toBe(0xff); // type_of_loader
    expect(page[0x211]).toBe(0x81); // loadflags: LOADED_HIGH | CAN_USE_HEAP
    expect(v.getUint16(0x224, true)).toBe(0xde00); // heap_end_ptr
    expect(v.getUint32(0x228, true)).toBe(0x20000); // cmd_line_ptr
    expect(v.getUint32(0x0c8, true)).toBe(0); // ext_cmd_line_ptr
    expect(v.getUint32(0x22c, true)).toBe(0x7fffffff); // initrd_addr_max
    expect(v.getUint32(0x230, true)).toBe(0x200000); // kernel_alignment
    expect(v.getUint32(0x238, true)).toBe(2047); // cmdline_size
    expect(v.getUint16(0x1fa, true)).toBe(0xffff); // vid_mode
    expect(v.getUint32(0x218, true)).toBe(0); // no ramdisk
    expect(v.getUint32(0x21c, true)).toBe(0);
    expect(page[0x1ef]).toBe(0); // sentinel
  });

  it('writes the e820 table at 0x2d0 and its length at 0x1e8', () => {
    const page = buildBootParams({ cmdlineAddress: 0x20000, e820 });
    const v = view(page);
    expect(page[0x1e8]).toBe(4);
    const entry = (i: number) => [v.getBigUint64(0x2d0 + i * 20, true), v.getBigUint64(0x2d8 + i * 20, true), v.getUint32(0x2e0 + i * 20, true)];
    expect(entry(0)).toEqual([0n, 0x9fc00n, 1]);
    expect(entry(1)).toEqual([0x9fc00n, 0x60400n, 2]);
    expect(entry(2)).toEqual([0x100000n, 0xc000_0000n - 0x100000n, 1]);
    expect(entry(3)).toEqual([0x1_0000_0000n, 0x8000_0000n, 1]);
    expect(page.subarray(0x2d0 + 4 * 20, 0x2d0 + 5 * 20)).toEqual(new Uint8Array(20));
  });

  it('fills the ramdisk fields', () => {
    const page = buildBootParams({ cmdlineAddress: 0x20000, e820, initramfs: { address: 0x1f00_0000, size: 0x12345 } });
    const v = view(page);
    expect(v.getUint32(0x218, true)).toBe(0x1f00_0000);
    expect(v.getUint32(0x21c, true)).toBe(0x12345);
    expect(v.getUint32(0x0c0, true)).toBe(0);
    expect(v.getUint32(0x0c4, true)).toBe(0);
  });

  it('gives the ACPI RSDP address at 0x070 (acpi_rsdp_addr), and zero without ACPI', () => {
    expect(view(buildBootParams({ cmdlineAddress: 0x20000, e820, acpiRsdpAddress: 0xe0000 })).getBigUint64(0x070, true))
      .toBe(0xe0000n);
    expect(view(buildBootParams({ cmdlineAddress: 0x20000, e820 })).getBigUint64(0x070, true)).toBe(0n);
  });

  it('splits addresses above 4 GiB into the ext_ fields', () => {
    const page = buildBootParams({ cmdlineAddress: 0x1_2345_6000, e820, initramfs: { address: 0x2_0000_1000, size: 0x1000 } });
    const v = view(page);
    expect([v.getUint32(0x228, true), v.getUint32(0x0c8, true)]).toEqual([0x2345_6000, 1]);
    expect([v.getUint32(0x218, true), v.getUint32(0x0c0, true)]).toEqual([0x1000, 2]);
  });

  it('starts from the bzImage header, copied verbatim except the loader fields', () => {
    const image = makeBzImage({ payload: pattern(16), cmdlineSize: 255, initSize: 0x777000 });
    const header = image.slice(0x1f1, 0x26c);
    const page = buildBootParams({ setupHeader: header, cmdlineAddress: 0x20000, e820 });
    const v = view(page);
    expect(v.getUint32(0x238, true)).toBe(255); // cmdline_size from the image
    expect(v.getUint32(0x260, true)).toBe(0x777000); // init_size from the image
    expect(v.getUint32(0x268, true)).toBe(0xabcdef); // last header field copied
    expect(page[0x26c]).toBe(0); // the byte after the header is not
    expect(page[0x1f1]).toBe(4); // setup_sects
    expect(page[0x210]).toBe(0xff);
    expect(page[0x211]).toBe(0x81);
    expect(v.getUint32(0x228, true)).toBe(0x20000);
    expect(page.subarray(0, 0x1e8)).toEqual(new Uint8Array(0x1e8)); // nothing else before the e820 count
  });

  it('rejects more than 128 e820 entries', () => {
    const many = Array.from({ length: 129 }, (_, i) => ({ address: i * 0x1000, size: 0x1000, type: 1 }));
    expect(() => buildBootParams({ cmdlineAddress: 0x20000, e820: many })).toThrow(/129 e820 entries/);
  });
});
