// The check that a kernel config fragment survived Kconfig
// (scripts/lib/kernel-config.mjs): an option asked for but dropped for
// missing dependencies, and an option the fragment says "is not set" that
// the final .config still has, both fail the build.
import { describe, expect, it } from 'vitest';
import { parseConfig, verifyConfig } from '../../../scripts/lib/kernel-config.mjs';

const fragment = [
  '# comment lines are not options',
  'CONFIG_VIRTIO_MMIO=y',
  'CONFIG_NR_CPUS=32',
  '# CONFIG_X86_MPPARSE is not set',
].join('\n');

describe('kernel config fragments', () => {
  it('reads set and "is not set" options', () => {
    expect([...parseConfig(fragment)]).toEqual([
      ['CONFIG_VIRTIO_MMIO', 'y'], ['CONFIG_NR_CPUS', '32'], ['CONFIG_X86_MPPARSE', 'n'],
    ]);
  });

  it('accepts a .config that has every option as asked (an unset option may be absent)', () => {
    expect(() => verifyConfig('test', fragment, 'CONFIG_VIRTIO_MMIO=y\nCONFIG_NR_CPUS=32\nCONFIG_OTHER=y\n')).not.toThrow();
  });

  it('fails on an option that was dropped or changed', () => {
    expect(() => verifyConfig('test', fragment, 'CONFIG_NR_CPUS=64\n'))
      .toThrow(/CONFIG_VIRTIO_MMIO: wanted y, got n\n {2}CONFIG_NR_CPUS: wanted 32, got 64/);
  });

  it('fails on an option the fragment says "is not set" that is set anyway', () => {
    expect(() => verifyConfig('test', fragment, 'CONFIG_VIRTIO_MMIO=y\nCONFIG_NR_CPUS=32\nCONFIG_X86_MPPARSE=y\n'))
      .toThrow(/CONFIG_X86_MPPARSE: wanted n, got y/);
  });
});
