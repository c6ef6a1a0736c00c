// QEMU microvm as the benchmarks and the soak start it: the reference tsvmm
// is measured against in the same run, with the same kernel, initramfs and
// command line. The serial console is on stdio, and the guest's reset ends
// QEMU (-no-reboot with reboot=t), as a tsvmm guest's reset ends tsvmm.
// (test/e2e/qemu-reference.test.ts checks the same set-up boots the images.)
//
// ACPI is on: both of the project's kernels find their devices in the DSDT,
// as under tsvmm. With ACPI off, microvm appends its virtio_mmio.device=
// entries to the end of the command line, which is after ` -- ` here: they
// reach init as words of its command, the kernel never sees them, and the
// guest has no virtio devices at all (a benchmark's dd of=/dev/vda then
// wrote a file in the guest's RAM, not the disk).

export const QEMU_PROGRAM = 'qemu-system-x86_64';

/**
 * QEMU's arguments for one guest. `kernelParameters` follow the console and
 * reset parameters (and hold the init arguments after ` -- `); `extra` are
 * more QEMU arguments (a disk, say).
 */
export function qemuMicrovmArguments({ kernel, initramfs, kernelParameters, memoryMiB = 256, cpus = 1, extra = [] }) {
  return [
    '-M', 'microvm,x-option-roms=off,isa-serial=on,rtc=on,pic=on,pit=on,acpi=on',
    '-enable-kvm', '-cpu', 'host', '-m', `${memoryMiB}M`, '-smp', String(cpus),
    '-nodefaults', '-no-user-config', '-nographic', '-no-reboot', '-serial', 'stdio',
    '-kernel', kernel, '-initrd', initramfs, ...extra,
    '-append', `console=ttyS0 reboot=t panic=-1 ${kernelParameters}`,
  ];
}
