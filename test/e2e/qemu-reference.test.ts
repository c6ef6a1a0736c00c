// Reference check: QEMU (microvm, KVM) boots the guest images built from
// guest-images/ and runs a command through the initramfs's /init contract.
// It proves the images (and, here, the sandbox's nested KVM) independently
// of tsvmm, and the same QEMU is the baseline of the benchmarks.
import { describe, expect, it } from 'vitest';
import { QEMU_PROGRAM, qemuMicrovmArguments } from '../../scripts/lib/qemu-microvm.mjs';
import { images, imagesBuilt } from '../helpers/guest-images.js';
import { describeRun, runProcess } from '../helpers/run-process.js';

/** QEMU exactly as the benchmarks start it (scripts/lib/qemu-microvm.mjs), running `initArgs` after ` -- `. */
function qemuArgs(kernel: string, initArgs: string): string[] {
  return qemuMicrovmArguments({ kernel, initramfs: images.initramfs, kernelParameters: `-- ${initArgs}` });
}

describe.skipIf(!imagesBuilt)('QEMU microvm reference boot', () => {
  for (const [name, kernel] of [['vmlinux', images.vmlinux], ['bzImage', images.bzImage]] as const) {
    it(`boots ${name} + initramfs and runs the command after --`, async () => {
      const result = await runProcess(QEMU_PROGRAM, qemuArgs(kernel, 'echo hello-from-guest'), { timeoutMs: 120_000 });
      expect(result.timedOut, describeRun(result)).toBe(false);
      expect(result.stdout, describeRun(result)).toMatch(/^hello-from-guest\r?$/m);
      expect(result.stdout, describeRun(result)).toMatch(/^tsvmm-guest: exit 0\r?$/m);
    });
  }

  it('reports a failing command\'s status', async () => {
    const result = await runProcess(QEMU_PROGRAM, qemuArgs(images.vmlinux, 'exit 3'), { timeoutMs: 120_000 });
    expect(result.stdout, describeRun(result)).toMatch(/^tsvmm-guest: exit 3\r?$/m);
  });
});
