// A kernel like the ones users bring (defconfig + guest-images/kernel/full.config:
// ACPI, KASLR, PCI, many drivers, no MP table parser, virtio-mmio devices
// through ACPI only) boots under tsvmm every time, with 1 and 2 vCPUs, with
// and without KASLR; finds its CPUs and devices through tsvmm's ACPI tables;
// powers off; and a panic of this kernel is reported like the default one's.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXIT_GUEST_PANIC } from '../../src/vm/vm-exit.js';
import { fullKernel, fullKernelBuilt, images, imagesBuilt } from '../helpers/guest-images.js';
import { describeRun, type ProcessResult } from '../helpers/run-process.js';
import { guestScriptCommand, runTsvmm, testCpus } from '../helpers/tsvmm.js';

const BOOTS_PER_COMBINATION = 10;
const dir = mkdtempSync(join(tmpdir(), 'tsvmm-full-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function boot(kernelParameters: string, command: string, extra: string[] = []): Promise<ProcessResult> {
  return runTsvmm(['--kernel', fullKernel.bzImage, '--initramfs', images.initramfs, ...extra,
    '--cmdline', `quiet ${kernelParameters} -- ${command}`], { timeoutMs: 180_000 });
}

describe.skipIf(!imagesBuilt || !fullKernelBuilt)('the full kernel (ACPI, no MP table, no command-line devices)', () => {
  for (const cpus of [1, 2]) {
    for (const kaslr of [true, false]) {
      it(`boots to init ${BOOTS_PER_COMBINATION} times in a row with ${cpus} vCPU(s), KASLR ${kaslr ? 'on' : 'off'}`, async () => {
        for (let attempt = 1; attempt <= BOOTS_PER_COMBINATION; attempt++) {
          // `nokaslr` is read by the decompressor, not by the kernel's own
          // parser, so the kernel also hands it to init as its first
          // argument: the ':' makes the default init's `sh -c` run on past it.
          const result = await boot(kaslr ? '' : 'nokaslr', ': ; echo cpus=$(nproc)', ['--cpus', testCpus(cpus)]);
          expect({ attempt, code: result.code, stderr: result.stderr }, describeRun(result)).toEqual({ attempt, code: 0, stderr: '' });
          expect(result.stdout, describeRun(result)).toMatch(new RegExp(`^cpus=${cpus}\\r?$`, 'm'));
        }
      }, BOOTS_PER_COMBINATION * 180_000);
    }
  }

  it('finds the disk, vsock and clock through the DSDT, then `poweroff -f` ends tsvmm with 0', async () => {
    const script = `echo disk=$(cat /sys/block/vda/serial)
echo vsock=$(ls /dev/vsock)
echo rtc=$(cut -d' ' -f1 /sys/class/rtc/rtc0/name) $(cat /sys/class/rtc/rtc0/date)
dmesg | grep -q 'ACPI: RSDP 0x00000000000E0000' && echo rsdp=found
poweroff -f; sleep 60`;
    const result = await boot('', guestScriptCommand(script), [
      '--cpus', testCpus(2), '--disk', `path=${images.rootfs},readonly=on,id=full-disk`, '--vsock', `cid=3,socket=${join(dir, 'vm.vsock')}`]);
    expect({ code: result.code, stderr: result.stderr }, describeRun(result)).toEqual({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(/^disk=full-disk\r?$/m);
    expect(result.stdout).toMatch(/^vsock=\/dev\/vsock\r?$/m);
    expect(result.stdout).toMatch(/^rsdp=found\r?$/m);
    // rtc_cmos bound to the DSDT's clock (without it, its probe failed: -22) and reads the host's date.
    const [, driver, date] = /^rtc=(\S*) (\S*)\r?$/m.exec(result.stdout) ?? [];
    expect(driver, describeRun(result)).toBe('rtc_cmos');
    expect(Math.abs(Date.parse(`${date}T00:00:00Z`) - Date.now())).toBeLessThan(2 * 24 * 3600 * 1000);
  });

  it('reports its exit status through the guest status device like the default kernel', async () => {
    const result = await boot('', 'exit 7');
    expect({ code: result.code, stderr: result.stderr }, describeRun(result)).toEqual({ code: 7, stderr: '' });
  });

  it('a panic of this kernel exits 101 with its reason', async () => {
    const result = await runTsvmm(['--kernel', fullKernel.bzImage, '--cmdline', 'quiet rdinit=/no/such/init'], { timeoutMs: 180_000 });
    expect(result.code, describeRun(result)).toBe(EXIT_GUEST_PANIC);
    expect(result.stderr).toMatch(/^tsvmm: guest kernel panicked: "(VFS: Unable to mount root fs|No working init found).*"\n$/);
  });
});
