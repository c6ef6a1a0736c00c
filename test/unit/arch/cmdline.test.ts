import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../../src/memory/guest-memory.js';
import {
  DEFAULT_KERNEL_PARAMS, buildCmdline, encodeCmdline, maxCmdlineLength, virtioMmioParam, writeCmdline,
} from '../../../src/arch/x86_64/cmdline.js';
import { BootConfigError } from '../../../src/arch/x86_64/errors.js';
import { virtioMmioSlot } from '../../../src/arch/x86_64/layout.js';
import type { SetupHeaderInfo } from '../../../src/arch/x86_64/setup-header.js';

const devices = [virtioMmioParam(virtioMmioSlot(0)), virtioMmioParam(virtioMmioSlot(1))];

describe('buildCmdline', () => {
  it('announces virtio-mmio devices in the kernel syntax', () => {
    expect(devices).toEqual(['virtio_mmio.device=4K@0xd0000000:5', 'virtio_mmio.device=4K@0xd0001000:6']);
  });

  it('puts defaults first, then the user, then devices', () => {
    expect(buildCmdline('root=/dev/vda  rw', { defaults: DEFAULT_KERNEL_PARAMS, required: devices })).toBe(
      'console=ttyS0 reboot=k,panic_warm panic=-1 root=/dev/vda rw ' +
        'virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6');
  });

  it('keeps init arguments after "--" last', () => {
    expect(buildCmdline('quiet -- /bin/sh -c "echo hi"', { defaults: ['console=ttyS0'], required: devices })).toBe(
      'console=ttyS0 quiet virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6 ' +
        '-- /bin/sh -c "echo hi"');
  });

  it('handles a cmdline that starts with "--"', () => {
    expect(buildCmdline('-- single', { required: ['a=1'] })).toBe('a=1 -- single');
  });

  it('does not split on a "--" inside quotes', () => {
    expect(buildCmdline('init="/bin/sh -- x" ro', { required: ['a=1'] })).toBe('init="/bin/sh -- x" ro a=1');
  });

  it('handles an empty user cmdline', () => {
    expect(buildCmdline('', { defaults: ['console=ttyS0'] })).toBe('console=ttyS0');
    expect(buildCmdline('   ')).toBe('');
  });
});

describe('encodeCmdline / writeCmdline', () => {
  it('writes the bytes NUL-terminated at 0x20000', () => {
    const memory = GuestMemory.allocate(1024 * 1024);
    memory.fill(0x20000, 16, 0xff);
    expect(writeCmdline(memory, 'ro a=b', 2047)).toBe(0x20000);
    expect([...memory.slice(0x20000, 8)]).toEqual([0x72, 0x6f, 0x20, 0x61, 0x3d, 0x62, 0, 0xff]);
  });

  it('accepts exactly the limit and rejects one byte more', () => {
    expect(encodeCmdline('x'.repeat(2047), 2047).byteLength).toBe(2048);
    expect(() => encodeCmdline('x'.repeat(2048), 2047)).toThrow(BootConfigError);
    expect(() => encodeCmdline('x'.repeat(2048), 2047)).toThrow(/2048 bytes, but this kernel accepts at most 2047/);
  });

  it('counts UTF-8 bytes, not characters', () => {
    expect(() => encodeCmdline('é'.repeat(6), 11)).toThrow(/12 bytes/);
  });

  it('rejects an embedded NUL', () => {
    expect(() => encodeCmdline('a\0b', 100)).toThrow(/NUL/);
  });

  it('takes the limit from the bzImage header, or 2047 for a vmlinux', () => {
    expect(maxCmdlineLength()).toBe(2047);
    expect(maxCmdlineLength({ cmdlineSize: 255 } as SetupHeaderInfo)).toBe(255);
    expect(maxCmdlineLength({ cmdlineSize: 0x7fffffff } as SetupHeaderInfo)).toBe(0xffff);
  });
});
