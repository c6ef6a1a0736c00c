// ACPI with a real guest: the default guest's kernel has ACPI, so it finds
// its CPUs in tsvmm's MADT and its devices in the DSDT, and powers off
// through the FADT's sleep registers; with acpi=off the same kernel falls
// back to the MP table and the command line's virtio_mmio.device= entries,
// which is how kernels without ACPI boot.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { images, imagesBuilt } from '../helpers/guest-images.js';
import { describeRun } from '../helpers/run-process.js';
import { STATUS_DEVICE, guestScriptCommand, runInGuest, runTsvmm, testCpus } from '../helpers/tsvmm.js';

const dir = mkdtempSync(join(tmpdir(), 'tsvmm-acpi-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What the guest reports about its CPUs and devices, one `key=value` per line. */
const INVENTORY = `
echo cpus=$(nproc)
echo disk=$(cat /sys/block/vda/serial)
echo vsock=$(ls /dev/vsock)
echo acpi-devices=$(ls /sys/bus/acpi/devices 2>/dev/null | grep -c LNRO0005)
echo cmdline-devices=$(ls /sys/bus/platform/devices | grep -c '^virtio-mmio\\.')
dmesg | grep -q 'ACPI: RSDP 0x00000000000E0000' && echo rsdp=found
dmesg | grep -c -E 'virtio-mmio[.][0-9]+: .*error -16' | sed s/^/duplicate-device-lines=/
true
`;

let vms = 0;
/** Two vCPUs, a disk and a vsock device. */
function devices(): string[] {
  return ['--cpus', testCpus(2), '--disk', `path=${images.rootfs},readonly=on,id=acpi-disk`,
    '--vsock', `cid=3,socket=${join(dir, `vm-${vms++}.vsock`)}`];
}

describe.skipIf(!imagesBuilt)('ACPI', () => {
  it('finds every vCPU in the MADT and the virtio devices in the DSDT; `poweroff -f` ends tsvmm with 0', async () => {
    const result = await runInGuest(guestScriptCommand(`${INVENTORY}\nsync; poweroff -f; sleep 60`), devices());
    expect({ code: result.code, stderr: result.stderr }, describeRun(result)).toEqual({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(/^cpus=2\r?$/m);
    expect(result.stdout).toMatch(/^disk=acpi-disk\r?$/m);
    expect(result.stdout).toMatch(/^vsock=\/dev\/vsock\r?$/m);
    expect(result.stdout).toMatch(/^acpi-devices=2\r?$/m);
    expect(result.stdout).toMatch(/^rsdp=found\r?$/m);
    // The kernel has command-line devices too: it refuses their copies (the README says so).
    expect(result.stdout).toMatch(/^duplicate-device-lines=4\r?$/m);
    // Powered off, not reset: init never got to print its own verdict.
    expect(result.stdout).not.toMatch(/tsvmm-guest: exit/);
  });

  it('a status remembered in the STATUS register is the exit status of a later power-off', async () => {
    const script = `devmem $((${STATUS_DEVICE} + 4)) 8 6; poweroff -f; sleep 60`;
    const result = await runInGuest(guestScriptCommand(script));
    expect({ code: result.code, stderr: result.stderr }, describeRun(result)).toEqual({ code: 6, stderr: '' });
  });

  it('with acpi=off, the same kernel boots from the MP table and the command line\'s devices (the path of kernels without ACPI)', async () => {
    const result = await runTsvmm([...devices(), '--cmdline', `quiet acpi=off -- ${guestScriptCommand(INVENTORY)}`]);
    expect({ code: result.code, stderr: result.stderr }, describeRun(result)).toEqual({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(/^cpus=2\r?$/m);
    expect(result.stdout).toMatch(/^disk=acpi-disk\r?$/m);
    expect(result.stdout).toMatch(/^vsock=\/dev\/vsock\r?$/m);
    expect(result.stdout).toMatch(/^cmdline-devices=2\r?$/m);
    expect(result.stdout).not.toMatch(/^rsdp=found/m);
  });
});
