// Paths of the images scripts/build-guest-images.mjs builds (npm run images).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const projectRoot = fileURLToPath(new URL('../../', import.meta.url));
const out = (name: string) => fileURLToPath(new URL(`../../guest-images/out/${name}`, import.meta.url));

export const images = {
  vmlinux: out('vmlinux'),
  bzImage: out('bzImage'),
  initramfs: out('initramfs.cpio.gz'),
  rootfs: out('rootfs.ext4'),
};

export const imagesBuilt = Object.values(images).every((path) => existsSync(path));

/**
 * The kernel like the ones users bring (defconfig + guest-images/kernel/full.config:
 * ACPI, KASLR, no MP table, devices through ACPI only). Built by `npm test`
 * and `npm run images`, not by the demo or the sandbox.
 */
export const fullKernel = {
  bzImage: out('full-bzImage'),
  vmlinux: out('full-vmlinux'),
};

export const fullKernelBuilt = Object.values(fullKernel).every((path) => existsSync(path));
