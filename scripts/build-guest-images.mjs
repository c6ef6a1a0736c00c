#!/usr/bin/env node
// Builds everything tsvmm boots, from Debian packages, into guest-images/out/:
//
//   vmlinux, bzImage        the guest kernel (guest-images/kernel/guest.config)
//   initramfs.cpio.gz       busybox + socat + guest-images/initramfs/init + the exec agent
//                           + bench:virtio-blk's random-read probe (guest-images/bench/)
//   rootfs.ext4             a small ext4 image for block-device tests
//   sandbox-bzImage         the nested sandbox's L1 kernel (+ sandbox.config)
//   sandbox-initramfs.cpio.gz  busybox + guest-images/initramfs/sandbox-init
//   full-bzImage, full-vmlinux  a kernel like the ones users bring: x86_64
//                           defconfig + guest-images/kernel/full.config (ACPI,
//                           KASLR, no MP table, no virtio-mmio on the cmdline)
//
// Each artefact is cached outside the clone (scripts/lib/cache.mjs) under a
// hash of its inputs: a second run, or a fresh clone on the same machine,
// copies it in seconds instead of rebuilding kernels for minutes.
import { $, fs, path } from 'zx';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { cached, cacheRoot, hashOf } from './lib/cache.mjs';
import { ensureDebianPackages, packageVersion } from './lib/debian.mjs';
import { verifyConfig } from './lib/kernel-config.mjs';
import { elapsed, step, ticker } from './lib/progress.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const imagesDir = path.join(root, 'guest-images');
export const outDir = path.join(imagesDir, 'out');

// Bump when the way an artefact is built changes without its inputs changing.
const RECIPE = 'v1';
const LINUX = 'linux-source-6.12';

const PACKAGES = [LINUX, 'busybox-static', 'socat', 'cpio', 'e2fsprogs', 'xz-utils',
  'build-essential', 'bc', 'flex', 'bison', 'libelf-dev', 'libssl-dev'];

const read = (rel) => fs.readFileSync(path.join(imagesDir, rel));

/** Unpacks Debian's kernel source tarball once per source version. */
async function linuxSource(version) {
  const tarball = `/usr/src/${LINUX}.tar.xz`;
  const { dir } = await cached('linux-src', hashOf(version, RECIPE), async (tmp) => {
    step(`unpacking ${tarball} (about a minute)`);
    await $`tar -xJf ${tarball} -C ${tmp} --strip-components=1`;
  });
  return dir;
}

/**
 * What a kernel's configuration starts from before its fragment is applied
 * (KCONFIG_ALLCONFIG pins the fragment's options; every other option gets
 * the target's value):
 *   allnoconfig  every option off: the fragment lists all the kernel has;
 *   defconfig    x86_64's defconfig with the fragment merged over it, which
 *                is what scripts/kconfig/merge_config.sh does (alldefconfig
 *                with the defconfig and the fragment as one allconfig file).
 */
const CONFIG_BASES = {
  allnoconfig: { target: 'allnoconfig', allconfig: (fragment) => fragment },
  defconfig: {
    target: 'alldefconfig',
    allconfig: (fragment, srcDir) =>
      fs.readFileSync(path.join(srcDir, 'arch/x86/configs/x86_64_defconfig'), 'utf8') + '\n' + fragment,
  },
};

async function buildKernel(name, fragment, srcDir, tmp, base = 'allnoconfig') {
  const buildDir = path.join(tmp, 'build');
  const fragmentFile = path.join(tmp, 'fragment.config');
  const logFile = path.join(cacheRoot, `${name}-build.log`);
  const { target, allconfig } = CONFIG_BASES[base];
  fs.writeFileSync(fragmentFile, allconfig(fragment, srcDir));
  const jobs = cpus().length + 1;
  const start = Date.now();
  step(`building the ${name} kernel with make -j${jobs} (takes minutes; log: ${logFile})`);

  const log = fs.createWriteStream(logFile);
  let compiled = 0;
  const stopTicker = ticker(name, () => `${compiled} files compiled`);
  const make = (...targets) => {
    const p = $({ quiet: true })`make -C ${srcDir} O=${buildDir} -j${jobs} KCONFIG_ALLCONFIG=${fragmentFile} ${targets}`;
    p.stdout.on('data', (chunk) => {
      log.write(chunk);
      compiled += (String(chunk).match(/^\s+CC\s/gm) ?? []).length;
    });
    p.stderr.on('data', (chunk) => log.write(chunk));
    return p;
  };
  try {
    await make(target);
    verifyConfig(name, fragment, fs.readFileSync(path.join(buildDir, '.config'), 'utf8'));
    await make('vmlinux', 'bzImage');
  } catch (error) {
    const tail = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n') : '';
    throw new Error(`${name} kernel build failed (full log: ${logFile}):\n${tail}\n${error.message ?? error}`);
  } finally {
    stopTicker();
    log.end();
  }
  fs.copyFileSync(path.join(buildDir, 'vmlinux'), path.join(tmp, 'vmlinux'));
  fs.copyFileSync(path.join(buildDir, 'arch/x86/boot/bzImage'), path.join(tmp, 'bzImage'));
  fs.copyFileSync(path.join(buildDir, '.config'), path.join(tmp, 'config'));
  fs.rmSync(buildDir, { recursive: true, force: true });
  console.log(`  ${name}: built in ${elapsed(start)}`);
}

/** Shared libraries (and the dynamic loader) a binary needs, from ldd. */
async function sharedLibraries(binary) {
  const out = (await $`ldd ${binary}`.quiet()).stdout;
  return [...out.matchAll(/(\/\S+\.so[^\s]*)/g)].map((m) => m[1]);
}

/**
 * Writes a gzip'd newc cpio with the kernel's own gen_init_cpio, which takes
 * a spec of files, symlinks and device nodes: no root needed for /dev/console.
 */
async function writeCpio(srcDir, tmp, specLines, outFile) {
  const tool = path.join(tmp, 'gen_init_cpio');
  await $`cc -O2 -o ${tool} ${path.join(srcDir, 'usr/gen_init_cpio.c')}`.quiet();
  const spec = path.join(tmp, 'cpio.spec');
  fs.writeFileSync(spec, specLines.join('\n') + '\n');
  await $`${tool} ${spec} | gzip -9 -n > ${outFile}`.quiet();
}

/** The common part of both initramfs images: dirs, /dev/console, busybox. */
async function busyboxSpec() {
  const applets = (await $`/bin/busybox --list-full`.quiet()).stdout.split('\n').filter(Boolean);
  const spec = [
    'dir /dev 0755 0 0', 'nod /dev/console 0600 0 0 c 5 1', 'nod /dev/null 0666 0 0 c 1 3',
    'dir /bin 0755 0 0', 'dir /sbin 0755 0 0', 'dir /usr 0755 0 0', 'dir /usr/bin 0755 0 0',
    'dir /usr/sbin 0755 0 0', 'dir /proc 0755 0 0', 'dir /sys 0755 0 0', 'dir /tmp 1777 0 0',
    'dir /root 0700 0 0', 'dir /etc 0755 0 0', 'dir /run 0755 0 0', 'dir /mnt 0755 0 0',
    'file /bin/busybox /bin/busybox 0755 0 0',
  ];
  for (const applet of applets) {
    if (applet !== 'bin/busybox') spec.push(`slink /${applet} /bin/busybox 0777 0 0`);
  }
  return spec;
}

async function guestInitramfs(srcDir, tmp) {
  const spec = await busyboxSpec();
  spec.push(`file /init ${path.join(imagesDir, 'initramfs/init')} 0755 0 0`);
  // The exec agent (docs/exec-agent.md), static so that it needs no library in the image.
  const agent = path.join(tmp, 'tsvmm-agent');
  await $`cc -static -Os -Wall -Wextra -o ${agent} ${path.join(imagesDir, 'agent/tsvmm-agent.c')}`.quiet();
  spec.push(`file /usr/bin/tsvmm-agent ${agent} 0755 0 0`);
  // bench:virtio-blk's 4 KiB random-read probe (the image has no fio).
  const randomRead = path.join(tmp, 'tsvmm-random-read');
  await $`cc -static -O2 -Wall -Wextra -o ${randomRead} ${path.join(imagesDir, 'bench/random-read.c')}`.quiet();
  spec.push(`file /usr/bin/tsvmm-random-read ${randomRead} 0755 0 0`);
  const socat = '/usr/bin/socat';
  spec.push(`file ${socat} ${socat} 0755 0 0`);
  const dirs = new Set();
  for (const lib of await sharedLibraries(socat)) {
    const real = fs.realpathSync(lib);
    for (let d = path.dirname(lib); d !== '/'; d = path.dirname(d)) dirs.add(d);
    spec.push(`file ${lib} ${real} 0755 0 0`);
  }
  // Parent folders first: sorted paths put /lib before /lib/x86_64-linux-gnu.
  spec.splice(2, 0, ...[...dirs].sort().map((dir) => `dir ${dir} 0755 0 0`));
  await writeCpio(srcDir, tmp, dedupeDirs(spec), path.join(tmp, 'initramfs.cpio.gz'));
}

/** gen_init_cpio rejects nothing, but a dir listed twice would be noise. */
function dedupeDirs(spec) {
  const seen = new Set();
  return spec.filter((line) => {
    if (!line.startsWith('dir ')) return true;
    const name = line.split(' ')[1];
    if (seen.has(name)) return false;
    seen.add(name);
    return true;
  });
}

async function sandboxInitramfs(srcDir, tmp) {
  const spec = await busyboxSpec();
  spec.push(`file /init ${path.join(imagesDir, 'initramfs/sandbox-init')} 0755 0 0`);
  await writeCpio(srcDir, tmp, spec, path.join(tmp, 'sandbox-initramfs.cpio.gz'));
}

async function rootfs(tmp) {
  const content = path.join(tmp, 'content');
  fs.mkdirSync(path.join(content, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(content, 'hello.txt'), 'hello from rootfs.ext4\n');
  fs.writeFileSync(path.join(content, 'etc/hostname'), 'tsvmm-rootfs\n');
  await $`mkfs.ext4 -q -F -L tsvmm-root -E root_owner=0:0 -d ${content} ${path.join(tmp, 'rootfs.ext4')} 64M`.quiet();
  fs.rmSync(content, { recursive: true });
}

/** Copies a cached artefact into guest-images/out/ atomically. */
function install(fromDir, file, asName = file) {
  const target = path.join(outDir, asName);
  const tmp = `${target}.tmp-${process.pid}`;
  fs.copyFileSync(path.join(fromDir, file), tmp);
  fs.renameSync(tmp, target);
}

/**
 * Builds what is missing; `quiet` prints nothing when everything came from
 * the cache. `sandbox` adds the nested sandbox's kernel and initramfs, `full`
 * the defconfig-based kernel (full-bzImage, full-vmlinux).
 */
export async function buildGuestImages({ sandbox = true, full = true, quiet = false } = {}) {
  const start = Date.now();
  const built = [];
  const note = (name, result) => { if (!result.hit) built.push(name); return result; };
  await ensureDebianPackages(PACKAGES);
  const version = await packageVersion(LINUX);
  const [busybox, socat, libc] = [await packageVersion('busybox-static'), await packageVersion('socat'), await packageVersion('libc6-dev')];
  const srcDir = await linuxSource(version);
  fs.mkdirSync(outDir, { recursive: true });

  const guestFragment = read('kernel/guest.config').toString();
  const guest = note('guest kernel', await cached('kernel-guest', hashOf(guestFragment, version, RECIPE),
    (tmp) => buildKernel('guest', guestFragment, srcDir, tmp)));
  install(guest.dir, 'vmlinux');
  install(guest.dir, 'bzImage');

  const initramfs = note('initramfs', await cached('initramfs', hashOf(read('initramfs/init'), read('agent/tsvmm-agent.c'), read('bench/random-read.c'), busybox, socat, libc, version, RECIPE),
    (tmp) => guestInitramfs(srcDir, tmp)));
  install(initramfs.dir, 'initramfs.cpio.gz');

  const disk = note('rootfs', await cached('rootfs', hashOf('rootfs', RECIPE), rootfs));
  install(disk.dir, 'rootfs.ext4');

  if (sandbox) {
    const sandboxFragment = guestFragment + '\n' + read('kernel/sandbox.config').toString();
    const kernel = note('sandbox kernel', await cached('kernel-sandbox', hashOf(sandboxFragment, version, RECIPE),
      (tmp) => buildKernel('sandbox', sandboxFragment, srcDir, tmp)));
    install(kernel.dir, 'bzImage', 'sandbox-bzImage');
    const sInitramfs = note('sandbox initramfs', await cached('sandbox-initramfs', hashOf(read('initramfs/sandbox-init'), busybox, version, RECIPE),
      (tmp) => sandboxInitramfs(srcDir, tmp)));
    install(sInitramfs.dir, 'sandbox-initramfs.cpio.gz');
  }
  if (full) {
    const fullFragment = read('kernel/full.config').toString();
    const kernel = note('full kernel', await cached('kernel-full', hashOf(fullFragment, 'defconfig', version, RECIPE),
      (tmp) => buildKernel('full', fullFragment, srcDir, tmp, 'defconfig')));
    install(kernel.dir, 'bzImage', 'full-bzImage');
    install(kernel.dir, 'vmlinux', 'full-vmlinux');
  }
  if (!quiet || built.length > 0) {
    const what = built.length > 0 ? `built ${built.join(', ')}` : 'all from the cache';
    step(`guest images ready in ${path.relative(process.cwd(), outDir) || outDir}: ${what} (${elapsed(start)})`);
  }
  return outDir;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  try {
    await buildGuestImages({
      sandbox: !process.argv.includes('--no-sandbox'),
      full: !process.argv.includes('--no-full'),
    });
  } catch (error) {
    console.error(`build-guest-images: ${error.message ?? error}`);
    process.exit(1);
  }
}
