// QEMU microvm as the benchmarks and the soak start it: the reference tsvmm
// is measured against in the same run, with the same kernel, initramfs and
// command line. The serial console is on stdio, and the guest's reset ends
// QEMU (-no-reboot with reboot=t), as a tsvmm guest's reset ends tsvmm.
// (test/e2e/qemu-reference.test.ts checks the same set-up boots the images.)

export const QEMU_PROGRAM = 'qemu-system-x86_64';

/**
 * QEMU's arguments for one guest. `kernelParameters` follow the console and
 * reset parameters (and hold the init arguments after ` -- `); `acpi` is for
 * kernels that find their devices through ACPI (the fuller kernel);
 * `extra` are more QEMU arguments (a disk, say).
 */
export function qemuMicrovmArguments({ kernel, initramfs, kernelParameters, memoryMiB = 256, cpus = 1, acpi = false, extra = [] }) {
  return [
    '-M', `microvm,x-option-roms=off,isa-serial=on,rtc=on,pic=on,pit=on,acpi=${acpi ? 'on' : 'off'}`,
    '-enable-kvm', '-cpu', 'host', '-m', `${memoryMiB}M`, '-smp', String(cpus),
    '-nodefaults', '-no-user-config', '-nographic', '-no-reboot', '-serial', 'stdio',
    '-kernel', kernel, '-initrd', initramfs, ...extra,
    '-append', `console=ttyS0 reboot=t panic=-1 ${kernelParameters}`,
  ];
}
