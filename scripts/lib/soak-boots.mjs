#!/usr/bin/env node
// Runs inside the sandbox (scripts/sandbox-soak.mjs starts it): boots the
// default guest again and again, under tsvmm and under QEMU in turn, and
// prints one `SOAK {...}` line per boot for the host side to count.
//
//   node scripts/lib/soak-boots.mjs BOOTS [tsvmm|qemu|both] [CPUS] [default|full] [HOGS] [KERNEL-PARAMS] [pin]
//
// KERNEL-PARAMS go on both VMMs' kernel command lines, after `quiet` (so
// `loglevel=8` undoes it); `pad=N` among them becomes one parameter N
// characters long, as a long command line printed through the console.
//
// HOGS busy loops run inside the sandbox meanwhile, competing with the
// guests' vCPU threads for the sandbox's CPUs (as the test runner does).
//
// `pin` runs every vCPU of a guest on sandbox CPU 0: tsvmm's own
// `--cpus affinity=`, and for QEMU `taskset -c 0` on the whole process (its
// vCPU threads cannot be named on its command line). Multi-threaded TCG
// breaks a guest's cross-modifying code when its vCPUs run on different
// sandbox CPUs (README, "The nested sandbox's own stability").
//
// `full` is the fuller kernel (guest-images/kernel/full.config: ACPI, KASLR,
// devices through ACPI only), which QEMU's microvm boots with its ACPI on.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { QEMU_PROGRAM, qemuMicrovmArguments } from './qemu-microvm.mjs';

const projectDir = fileURLToPath(new URL('../../', import.meta.url));
const images = join(projectDir, 'guest-images', 'out');
const BOOT_TIMEOUT_MS = 120_000;
const MARK = 'soak-alive';

const kernels = { default: join(images, 'vmlinux'), full: join(images, 'full-bzImage') };
const initramfs = join(images, 'initramfs.cpio.gz');

/** `pad=N` becomes `pad=xxx…` of N characters; other parameters stay as they are. */
function expandParameters(text) {
  return text.split(/\s+/).filter(Boolean)
    .map((word) => (/^pad=\d+$/.test(word) ? `pad=${'x'.repeat(Number(word.slice(4)))}` : word)).join(' ');
}

const PINNED_CPU = 0;
const pinned = (cpus) => `boot=${cpus},affinity=[${Array.from({ length: cpus }, (_, vcpu) => `${vcpu}@[${PINNED_CPU}]`).join(',')}]`;

const commands = {
  tsvmm: (cpus, guest, extra, pin) => [process.execPath, [join(projectDir, 'dist', 'cli.js'), '--cpus', pin ? pinned(cpus) : String(cpus),
    '--kernel', kernels[guest], '--initramfs', initramfs, '--cmdline', `quiet ${extra} -- echo ${MARK}`]],
  qemu: (cpus, guest, extra, pin) => {
    const args = qemuMicrovmArguments({ kernel: kernels[guest], initramfs, cpus, kernelParameters: `quiet ${extra} -- echo ${MARK}` });
    return pin ? ['taskset', ['-c', String(PINNED_CPU), QEMU_PROGRAM, ...args]] : [QEMU_PROGRAM, args];
  },
};

/** One boot: 'ok', 'died' (ended without the mark), or 'hung' (no end within the limit). */
function boot(vmm, cpus, guest, extra, pin) {
  const [program, args] = commands[vmm](cpus, guest, extra, pin);
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => { output += chunk; });
    child.stderr.on('data', (chunk) => { output += chunk; });
    const timer = setTimeout(() => child.kill('SIGKILL'), BOOT_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const seconds = (Date.now() - started) / 1000;
      const alive = output.includes(`\n${MARK}`) || output.startsWith(MARK);
      const outcome = signal === 'SIGKILL' ? 'hung' : alive && code === 0 ? 'ok' : 'died';
      const tail = outcome === 'ok' ? undefined : output.trim().split('\n').slice(-6).join(' | ');
      resolve({ vmm, cpus, guest, pin, outcome, code, seconds, tail });
    });
  });
}

const boots = Number(process.argv[2] ?? 20);
const which = process.argv[3] ?? 'both';
const cpus = Number(process.argv[4] ?? 1);
const guest = process.argv[5] ?? 'default';
const extraParameters = expandParameters(process.argv[7] ?? '');
const pin = process.argv[8] === 'pin';
const hogs = Array.from({ length: Number(process.argv[6] ?? 0) }, () => spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
const vmms = which === 'both' ? ['tsvmm', 'qemu'] : [which];
for (let i = 0; i < boots; i++) {
  for (const vmm of vmms) console.log(`SOAK ${JSON.stringify({ i, ...(await boot(vmm, cpus, guest, extraParameters, pin)) })}`);
}
// The hogs are children: they would keep this process (and the sandbox) alive.
for (const hog of hogs) hog.kill('SIGKILL');
