import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, configFromOptions, validateVmConfig, type VmOptionStrings } from '../../../src/config.js';
import { configErrorOf, fakePackageRoot } from '../../helpers/fake-package.js';

let dir: string;
let root: string; // a fake package root with the default guest images
let kernel: string;
let initramfs: string;
let diskA: string;
let diskB: string;
const isRoot = process.getuid?.() === 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tsvmm-config-'));
  root = fakePackageRoot(dir);
  kernel = join(dir, 'vmlinux');
  initramfs = join(dir, 'initrd');
  diskA = join(dir, 'a.img');
  diskB = join(dir, 'b.img');
  for (const file of [kernel, initramfs, diskA, diskB]) writeFileSync(file, 'x');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function parse(options: VmOptionStrings) {
  return configFromOptions({ kernel, ...options }, { packageRoot: root });
}

function errorOf(options: VmOptionStrings, packageRoot = root): string {
  return configErrorOf(() => configFromOptions(options, { packageRoot }));
}

describe('configFromOptions', () => {
  it('fills in the defaults: default guest, 1 vCPU, 512M, serial on the tty, no console', () => {
    expect(configFromOptions({}, { packageRoot: root })).toEqual({
      kernel: join(root, 'guest-images', 'out', 'vmlinux'),
      initramfs: join(root, 'guest-images', 'out', 'initramfs.cpio.gz'),
      cmdline: '',
      cpus: { boot: 1 },
      memory: { sizeBytes: 512 * 1024 * 1024 },
      serial: { kind: 'tty' },
      console: { kind: 'off' },
      disks: [],
    });
  });

  it('takes every option', () => {
    const socket = join(dir, 'vm.vsock');
    expect(
      configFromOptions(
        {
          kernel,
          initramfs,
          cmdline: 'quiet -- echo hi',
          cpus: 'boot=4',
          memory: 'size=1G',
          serial: 'off',
          console: 'tty',
          disk: [`path=${diskA},readonly=on,id=root`, `path=${diskB}`],
          vsock: [`cid=3,socket=${socket}`],
        },
        { packageRoot: join(dir, 'nowhere') },
      ),
    ).toEqual({
      kernel,
      initramfs,
      cmdline: 'quiet -- echo hi',
      cpus: { boot: 4 },
      memory: { sizeBytes: 1 << 30 },
      serial: { kind: 'off' },
      console: { kind: 'tty' },
      disks: [
        { path: diskA, readonly: true, id: 'root' },
        { path: diskB, readonly: false },
      ],
      vsock: { cid: 3, socket },
    });
  });

  it('gives a user kernel no default initramfs', () => {
    expect(parse({}).initramfs).toBeUndefined();
  });

  it('uses the default kernel with a user initramfs', () => {
    const config = configFromOptions({ initramfs }, { packageRoot: root });
    expect([config.kernel, config.initramfs]).toEqual([join(root, 'guest-images', 'out', 'vmlinux'), initramfs]);
  });

  it('accepts shorthand values for --cpus and --memory', () => {
    const config = parse({ cpus: '2', memory: '256M' });
    expect([config.cpus.boot, config.memory.sizeBytes]).toEqual([2, 256 * 1024 * 1024]);
  });

  it('parses vCPU affinity in Cloud Hypervisor syntax: ranges, lists, vCPUs left out', () => {
    expect(parse({ cpus: 'boot=3,affinity=[0@[0],2@[0-1,0]]' }).cpus).toEqual({
      boot: 3, affinity: [{ vcpu: 0, hostCpus: [0] }, { vcpu: 2, hostCpus: [0, 1] }],
    });
    expect(parse({ cpus: 'boot=2' }).cpus).toEqual({ boot: 2 });
  });

  it('accepts the smallest and largest CPU counts, memory sizes and CIDs', () => {
    expect(parse({ cpus: 'boot=1' }).cpus.boot).toBe(1);
    expect(parse({ cpus: 'boot=32' }).cpus.boot).toBe(32);
    expect(parse({ memory: 'size=64M' }).memory.sizeBytes).toBe(64 * 1024 * 1024);
    expect(parse({ memory: 'size=64G' }).memory.sizeBytes).toBe(64 * 1024 ** 3);
    expect(parse({ vsock: [`cid=0xFFFFFFFE,socket=${dir}/s`] }).vsock!.cid).toBe(0xfffffffe);
  });

  it.each([
    [{ serial: 'null', console: 'tty' }, { kind: 'null' }, { kind: 'tty' }],
    [{ serial: 'file=/tmp/x.log' }, { kind: 'file', path: '/tmp/x.log' }, { kind: 'off' }],
  ])('parses character modes %j', (options, serial, console) => {
    const config = parse(options);
    expect([config.serial, config.console]).toEqual([serial, console]);
  });

  it('accepts a disk id of 20 printable ASCII characters, and nothing else', () => {
    expect(parse({ disk: [`path=${diskA},id=${'x'.repeat(20)}`] }).disks[0]!.id).toHaveLength(20);
    expect(errorOf({ kernel, disk: [`path=${diskA},id=${'é'.repeat(5)}`] })).toBe(
      `--disk: id "${'é'.repeat(5)}" must be 1 to 20 printable ASCII characters (the virtio-blk serial)`,
    );
  });
});

describe('configFromOptions errors', () => {
  it.each<[string, VmOptionStrings, string]>([
    ['cpus 0', { cpus: 'boot=0' }, '--cpus: boot=0 is out of range (1 to 32)'],
    ['cpus 33', { cpus: 'boot=33' }, '--cpus: boot=33 is out of range (1 to 32)'],
    ['cpus word', { cpus: 'boot=two' }, '--cpus: boot must be a whole number, got "two"'],
    ['cpus unknown key', { cpus: 'boot=2,max=4' }, '--cpus: unknown key "max" (valid keys: boot, affinity)'],
    ['affinity not a list', { cpus: 'boot=2,affinity=0@0' }, '--cpus: affinity: "0@0" is not a list of VCPU@[HOST CPUS] in brackets (e.g. --cpus boot=2,affinity=[0@[0-1],1@[2]])'],
    ['affinity junk between', { cpus: 'boot=2,affinity=[0@[0],x,1@[0]]' }, '--cpus: affinity: "[0@[0],x,1@[0]]" is not a list of VCPU@[HOST CPUS] in brackets (e.g. --cpus boot=2,affinity=[0@[0-1],1@[2]])'],
    ['affinity unbalanced', { cpus: 'boot=2,affinity=[0@[0]' }, '--cpus: unbalanced brackets in "boot=2,affinity=[0@[0]"'],
    ['affinity no host cpu', { cpus: 'boot=2,affinity=[0@[]]' }, '--cpus: affinity: a vCPU needs at least one host CPU (e.g. --cpus boot=2,affinity=[0@[0-1],1@[2]])'],
    ['affinity backwards', { cpus: 'boot=2,affinity=[0@[1-0]]' }, '--cpus: affinity: the range "1-0" runs backwards (e.g. --cpus boot=2,affinity=[0@[0-1],1@[2]])'],
    ['affinity word', { cpus: 'boot=2,affinity=[0@[one]]' }, '--cpus: affinity must be a whole number, got "one"'],
    ['affinity vcpu', { cpus: 'boot=2,affinity=[2@[0]]' }, '--cpus: affinity: vCPU 2 does not exist (boot=2: vCPUs 0 to 1) (e.g. --cpus boot=2,affinity=[0@[0-1],1@[2]])'],
    ['affinity twice', { cpus: 'boot=2,affinity=[0@[0],0@[0]]' }, '--cpus: affinity: vCPU 0 is given twice (e.g. --cpus boot=2,affinity=[0@[0-1],1@[2]])'],
    ['affinity host cpu', { cpus: 'boot=2,affinity=[1@[4096]]' }, `--cpus: affinity: host CPU 4096 (for vCPU 1) does not exist: this host has CPUs 0 to ${cpus().length - 1} (e.g. --cpus boot=2,affinity=[0@[0-1],1@[2]])`],
    ['memory small', { memory: 'size=32M' }, '--memory: size=32M is too small: the guest needs at least 64M'],
    ['memory large', { memory: 'size=65G' }, '--memory: size=65G is more than the 64G tsvmm supports'],
    ['memory unaligned', { memory: 'size=67108865' }, '--memory: size=67108865 is not a whole number of 4K pages'],
    ['memory unit', { memory: 'size=1T' }, '--memory: size must be a number of bytes with an optional K, M or G suffix (e.g. 512M), got "1T"'],
    ['memory missing', { memory: 'hugepages=on' }, '--memory: unknown key "hugepages" (valid keys: size)'],
    ['serial mode', { serial: 'pty' }, '--serial: unknown mode "pty" (valid: tty, off, null, file=PATH)'],
    ['console empty file', { console: 'file=' }, '--console: file= needs a path'],
    ['two ttys', { console: 'tty' }, '--serial and --console cannot both be tty: set one of them to off, null or file=PATH'],
    ['disk key', { disk: ['path=/x,size=1G'] }, '--disk: unknown key "size" (valid keys: path, readonly, id)'],
    ['disk no path', { disk: ['readonly=on'] }, '--disk: missing path= (e.g. --disk path=disk.img)'],
    ['disk readonly', { disk: ['path=/x,readonly=yes'] }, '--disk: readonly must be on or off, got "yes"'],
    ['disk id long', { disk: ['path=/x,id=abcdefghijklmnopqrstu'] }, '--disk: id "abcdefghijklmnopqrstu" must be 1 to 20 printable ASCII characters (the virtio-blk serial)'],
    ['disk missing file', { disk: ['path=/nonexistent/d.img'] }, '--disk: cannot read /nonexistent/d.img: no such file'],
    ['vsock no socket', { vsock: ['cid=3'] }, '--vsock: missing socket= (e.g. --vsock cid=3,socket=/tmp/vm.vsock)'],
    ['vsock no cid', { vsock: ['socket=/tmp/v'] }, '--vsock: missing cid= (e.g. --vsock cid=3,socket=/tmp/vm.vsock)'],
    ['cid 0', { vsock: ['cid=0,socket=/tmp/v'] }, '--vsock: CID 0 is reserved for the hypervisor; pick a CID from 3 to 4294967294'],
    ['cid 1', { vsock: ['cid=1,socket=/tmp/v'] }, '--vsock: CID 1 is the local loopback address; pick a CID from 3 to 4294967294'],
    ['cid 2', { vsock: ['cid=2,socket=/tmp/v'] }, '--vsock: CID 2 is the host (the guest connects to it); pick a CID from 3 to 4294967294'],
    ['cid -1', { vsock: ['cid=-1,socket=/tmp/v'] }, '--vsock: CID -1 (0xFFFFFFFF) is VMADDR_CID_ANY, the "any/random" wildcard; pick a CID from 3 to 4294967294'],
    ['cid max', { vsock: ['cid=4294967295,socket=/tmp/v'] }, '--vsock: CID -1 (0xFFFFFFFF) is VMADDR_CID_ANY, the "any/random" wildcard; pick a CID from 3 to 4294967294'],
    ['cid 2^32', { vsock: ['cid=4294967296,socket=/tmp/v'] }, '--vsock: cid=4294967296 is not a 32-bit CID; pick a CID from 3 to 4294967294'],
    ['two vsocks', { vsock: ['cid=3,socket=/tmp/a', 'cid=4,socket=/tmp/b'] }, '--vsock: given 2 times; a VM has at most one vsock device'],
    ['vsock dir', { vsock: ['cid=3,socket=/nonexistent/v.sock'] }, '--vsock: cannot create socket /nonexistent/v.sock: directory /nonexistent does not exist'],
    ['vsock long path', { vsock: [`cid=3,socket=/tmp/${'s'.repeat(92)}`] }, '--vsock: socket path is 97 bytes, too long: at most 96 fit a Unix socket address once "_<port>" is appended for guest connections; use a shorter one'],
    ['serial dir', { serial: 'file=/nonexistent/log' }, '--serial: cannot create output file /nonexistent/log: directory /nonexistent does not exist'],
    ['cmdline long', { cmdline: 'x'.repeat(2048) }, "--cmdline: 2048 bytes is longer than the kernel's limit of 2047"],
  ])('%s', (_name, options, message) => {
    expect(errorOf({ kernel, ...options })).toBe(message);
  });

  it('rejects a missing or unreadable kernel and initramfs, naming the option', () => {
    expect(errorOf({ kernel: '/x/vmlinux' })).toBe('--kernel: cannot read /x/vmlinux: no such file');
    expect(errorOf({ kernel: dir })).toBe(`--kernel: cannot read ${dir}: is a directory`);
    expect(errorOf({ kernel, initramfs: '/x/initrd' })).toBe('--initramfs: cannot read /x/initrd: no such file');
  });

  it.skipIf(isRoot)('reports permission problems (not as root)', () => {
    const locked = join(dir, 'locked.img');
    writeFileSync(locked, 'x');
    chmodSync(locked, 0o444);
    expect(errorOf({ kernel, disk: [`path=${locked}`] })).toBe(
      `--disk: cannot write ${locked}: permission denied (add readonly=on to use it read-only)`,
    );
    chmodSync(locked, 0o000);
    expect(errorOf({ kernel: locked })).toBe(`--kernel: cannot read ${locked}: permission denied`);
  });

  it('rejects the same disk twice, duplicate ids and a shared output file', () => {
    expect(errorOf({ kernel, disk: [`path=${diskA}`, `path=${diskA}`] })).toBe(`--disk: ${diskA} is given twice`);
    expect(errorOf({ kernel, disk: [`path=${diskA},id=d`, `path=${diskB},id=d`] })).toBe('--disk: id "d" is used by two disks');
    expect(errorOf({ kernel, serial: 'file=/tmp/same.log', console: 'file=/tmp/../tmp/same.log' })).toBe(
      '--serial and --console both write to /tmp/same.log: give each its own file',
    );
  });

  it('rejects an output file that is a directory', () => {
    expect(errorOf({ kernel, serial: `file=${dir}` })).toBe(`--serial: cannot write ${dir}: is a directory`);
  });

  it('tells the user to run npm run images when the default guest is missing', () => {
    const empty = join(dir, 'empty-root');
    mkdirSync(empty, { recursive: true });
    expect(errorOf({}, empty)).toBe(
      `no --kernel given and the default guest kernel ${join(empty, 'guest-images', 'out', 'vmlinux')} is missing: run "npm run images" to build it, or pass --kernel PATH`,
    );
    mkdirSync(join(empty, 'guest-images', 'out'), { recursive: true });
    writeFileSync(join(empty, 'guest-images', 'out', 'vmlinux'), 'k');
    expect(errorOf({}, empty)).toBe(
      `no --kernel given and the default guest initramfs ${join(empty, 'guest-images', 'out', 'initramfs.cpio.gz')} is missing: run "npm run images" to build it, or pass --kernel PATH`,
    );
  });
});

describe('error order', () => {
  it('reports a mistake in the options before a missing default guest', () => {
    const empty = join(dir, 'no-images');
    mkdirSync(empty, { recursive: true });
    expect(errorOf({ cpus: 'boot=99' }, empty)).toBe('--cpus: boot=99 is out of range (1 to 32)');
    expect(errorOf({ memory: 'size=big' }, empty)).toBe(
      '--memory: size must be a number of bytes with an optional K, M or G suffix (e.g. 512M), got "big"',
    );
  });
});

describe('validateVmConfig', () => {
  it('checks a configuration built in code the same way', () => {
    const config = parse({});
    expect(() => validateVmConfig({ ...config, cpus: { boot: 1.5 } })).toThrow('--cpus: boot=1.5 is out of range (1 to 32)');
    expect(() => validateVmConfig({ ...config, memory: { sizeBytes: 1 } })).toThrow('--memory: size=1 is too small: the guest needs at least 64M');
    expect(() => validateVmConfig(config)).not.toThrow();
  });
});
