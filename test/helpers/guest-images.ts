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
