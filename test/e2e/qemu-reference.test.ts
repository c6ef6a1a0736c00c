// Reference check: QEMU (microvm, KVM) boots the guest images built from
// guest-images/ and runs a command through the initramfs's /init contract.
// It proves the images (and, here, the sandbox's nested KVM) independently
// of tsvmm, and the same QEMU is the baseline of the benchmarks.
import { describe, expect, it } from 'vitest';
import { images, imagesBuilt } from '../helpers/guest-images.js';
import { describeRun, runProcess } from '../helpers/run-process.js';

function qemuArgs(kernel: string, initArgs: string): string[] {
  return [
    '-M', 'microvm,x-option-roms=off,isa-serial=on,rtc=on,pic=on,pit=on,acpi=off',
    '-enable-kvm', '-cpu', 'host', '-m', '256M', '-smp', '1',
    '-nodefaults', '-no-user-config', '-nographic', '-no-reboot', '-serial', 'stdio',
    '-kernel', kernel, '-initrd', images.initramfs,
    '-append', `console=ttyS0 reboot=t panic=-1 -- ${initArgs}`,
  ];
}

describe.skipIf(!imagesBuilt)('QEMU microvm reference boot', () => {
  for (const [name, kernel] of [['vmlinux', images.vmlinux], ['bzImage', images.bzImage]] as const) {
    it(`boots ${name} + initramfs and runs the command after --`, async () => {
      const result = await runProcess('qemu-system-x86_64', qemuArgs(kernel, 'echo hello-from-guest'), { timeoutMs: 120_000 });
      expect(result.timedOut, describeRun(result)).toBe(false);
      expect(result.stdout, describeRun(result)).toMatch(/^hello-from-guest\r?$/m);
      expect(result.stdout, describeRun(result)).toMatch(/^tsvmm-guest: exit 0\r?$/m);
    });
  }

  it('reports a failing command\'s status', async () => {
    const result = await runProcess('qemu-system-x86_64', qemuArgs(images.vmlinux, 'exit 3'), { timeoutMs: 120_000 });
    expect(result.stdout, describeRun(result)).toMatch(/^tsvmm-guest: exit 3\r?$/m);
  });
});
