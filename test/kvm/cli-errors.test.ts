// What a user sees when they get something wrong: exactly one line on
// stderr, starting with "tsvmm: ", naming the option or file to fix, no
// stack trace, nothing on stdout, and exit status 2. The built CLI is
// spawned as users run it. No guest runs: the mistakes are caught while
// parsing, while opening /dev/kvm, or while placing the kernel and
// initramfs in guest RAM (those need a /dev/kvm, hence the kvm project).
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { images, imagesBuilt } from '../helpers/guest-images.js';
import { runProcess, type ProcessResult } from '../helpers/run-process.js';
import { tinyElfKernel } from '../helpers/tiny-elf-kernel.js';
import { cliPath } from '../helpers/tsvmm.js';

const EXIT_USAGE = 2;
const isRoot = process.getuid?.() === 0;
/** nobody/nogroup: an ordinary user, to meet the permission errors root never sees. */
const NOBODY = { uid: 65534, gid: 65534 };

const scratch = mkdtempSync(join(tmpdir(), 'tsvmm-cli-errors-'));
chmodSync(scratch, 0o755); // so that `nobody` can reach the files inside
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function tsvmm(args: string[], as?: { uid: number; gid: number }): Promise<ProcessResult> {
  return runProcess(process.execPath, [cliPath, ...args], { timeoutMs: 60_000, ...as });
}

/**
 * The check every case shares. `line` is the whole stderr line without its
 * newline, or a pattern for it when it holds an address tsvmm computed.
 */
function expectUsageError(result: ProcessResult, line: string | RegExp): void {
  expect(result.timedOut).toBe(false);
  expect({ code: result.code, stdout: result.stdout }).toEqual({ code: EXIT_USAGE, stdout: '' });
  expect(result.stderr.endsWith('\n') && result.stderr.indexOf('\n') === result.stderr.length - 1).toBe(true);
  if (typeof line === 'string') expect(result.stderr).toBe(`${line}\n`);
  else expect(result.stderr.slice(0, -1)).toMatch(line);
}

describe.skipIf(!imagesBuilt)('command-line mistakes: one line, status 2', () => {
  it('an unknown option, and a stray argument', async () => {
    expectUsageError(await tsvmm(['--bogus']), "tsvmm: unknown option '--bogus'");
    expectUsageError(await tsvmm(['echo', 'hi']),
      'tsvmm: unexpected argument "echo": tsvmm takes options only; arguments for the guest\'s init go inside --cmdline after " -- " (e.g. --cmdline "quiet -- echo hi")');
  });

  it('unknown keys in key=value options', async () => {
    expectUsageError(await tsvmm(['--cpus', 'bot=2']), 'tsvmm: --cpus: unknown key "bot" (valid keys: boot, affinity)');
    expectUsageError(await tsvmm(['--memory', 'sise=1G']), 'tsvmm: --memory: unknown key "sise" (valid keys: size)');
  });

  it('bad sizes and counts', async () => {
    expectUsageError(await tsvmm(['--memory', 'size=12Q']),
      'tsvmm: --memory: size must be a number of bytes with an optional K, M or G suffix (e.g. 512M), got "12Q"');
    expectUsageError(await tsvmm(['--memory', 'size=16M']), 'tsvmm: --memory: size=16M is too small: the guest needs at least 64M');
    expectUsageError(await tsvmm(['--memory', 'size=128G']), 'tsvmm: --memory: size=128G is more than the 64G tsvmm supports');
    expectUsageError(await tsvmm(['--cpus', 'boot=0']), 'tsvmm: --cpus: boot=0 is out of range (1 to 32)');
    expectUsageError(await tsvmm(['--cpus', 'boot=2,affinity=[2@[0]]']),
      'tsvmm: --cpus: affinity: vCPU 2 does not exist (boot=2: vCPUs 0 to 1) (e.g. --cpus boot=2,affinity=[0@[0-1],1@[2]])');
  });

  it('a missing kernel, and a kernel that is a directory', async () => {
    const missing = join(scratch, 'no-such-vmlinux');
    expectUsageError(await tsvmm(['--kernel', missing]), `tsvmm: --kernel: cannot read ${missing}: no such file`);
    expectUsageError(await tsvmm(['--kernel', scratch]), `tsvmm: --kernel: cannot read ${scratch}: is a directory`);
  });

  it.skipIf(!isRoot)('an unreadable kernel (checked as an ordinary user: root reads everything)', async () => {
    const unreadable = join(scratch, 'unreadable-vmlinux');
    writeFileSync(unreadable, 'not for you');
    chmodSync(unreadable, 0o000);
    expectUsageError(await tsvmm(['--kernel', unreadable], NOBODY), `tsvmm: --kernel: cannot read ${unreadable}: permission denied`);
  });
});

describe.skipIf(!imagesBuilt || !existsSync('/dev/kvm'))('mistakes found while building the VM: one line, status 2', () => {
  it('a file that is neither an ELF vmlinux nor a bzImage', async () => {
    const text = join(scratch, 'config.txt');
    writeFileSync(text, 'CONFIG_VIRTIO_MMIO=y\n'.repeat(100));
    expectUsageError(await tsvmm(['--kernel', text]),
      `tsvmm: ${text} is neither an ELF vmlinux nor a bzImage (no \\x7fELF magic, no "HdrS" header at 0x202): pass the kernel build's vmlinux or arch/x86/boot/bzImage`);
  });

  it('a truncated kernel, whose segment runs past the end of the file', async () => {
    const kernel = join(scratch, 'truncated-vmlinux');
    writeFileSync(kernel, tinyElfKernel(0x100_0000, [0x90, 0x90, 0xf4, 0xeb]).subarray(0, 64 + 56 + 2));
    expectUsageError(await tsvmm(['--kernel', kernel]),
      `tsvmm: ${kernel}: ELF segment 0 (file bytes [0x78, 0x7c)) runs past the end of the file (122 bytes): file is truncated`);
  });

  it('an initramfs that does not fit in guest RAM (a disk image given as --initramfs)', async () => {
    // 64 MiB of disk image cannot fit in 64 MiB of RAM next to a kernel
    // that ends at 28 MiB; the message names the fix.
    expect(statSync(images.rootfs).size).toBe(64 * 1024 * 1024);
    expectUsageError(await tsvmm(['--memory', 'size=64M', '--initramfs', images.rootfs]),
      /^tsvmm: initramfs of 64\.0 MiB does not fit between the kernel's end \(0x[0-9a-f]+\) and 0x4000000: give the VM more memory \(--memory size=\.\.\.\)$/);
  });

  it('a kernel that does not fit in guest RAM', async () => {
    // Loaded at 96 MiB, it needs more than the 64 MiB the VM has.
    const kernel = join(scratch, 'high-vmlinux');
    writeFileSync(kernel, tinyElfKernel(0x600_0000));
    expectUsageError(await tsvmm(['--kernel', kernel, '--memory', 'size=64M']),
      `tsvmm: ${kernel}: ELF segment at [0x6000000, 0x6001000) is outside guest RAM: give the VM more memory or check the kernel file`);
  });

  it.skipIf(!isRoot || !existsSync('/dev/kvm') || (statSync('/dev/kvm').mode & 0o006) === 0o006)('/dev/kvm not permitted (as an ordinary user)', async () => {
    expectUsageError(await tsvmm([], NOBODY), 'tsvmm: no permission to open /dev/kvm: add yourself to the kvm group');
  });

  it.skipIf(!isRoot || !existsSync('/usr/bin/unshare'))('/dev/kvm missing (an empty /dev in a private mount namespace)', async () => {
    // unshare --mount makes the tmpfs on /dev visible to this one process only.
    const result = await runProcess('unshare', [
      '--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs tmpfs /dev && exec "$0" "$@"', process.execPath, cliPath,
    ], { timeoutMs: 60_000 });
    expectUsageError(result, 'tsvmm: /dev/kvm not found: this host has no KVM (load kvm_intel/kvm_amd, or use the sandbox: npm run sandbox)');
  });
});
