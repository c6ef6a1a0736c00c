// Vm.start()'s typed options: the same VmConfig and the same one-line errors
// as the CLI's option strings, with the library's own defaults.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configErrorOf, fakePackageRoot } from '../../helpers/fake-package.js';
import {
  configFromOptions, configFromStartOptions, type VmOptionStrings, type VmStartOptions,
} from '../../../src/config.js';

let dir: string;
let root: string; // a fake package root with the default guest images
let disk: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tsvmm-start-options-'));
  root = fakePackageRoot(dir);
  disk = join(dir, 'disk.img');
  writeFileSync(disk, 'x');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const fromObject = (options: VmStartOptions) => configFromStartOptions(options, { packageRoot: root });
const fromStrings = (options: VmOptionStrings) => configFromOptions(options, { packageRoot: root });

const errorOf = configErrorOf;

describe('Vm.start() options', () => {
  it('default to the default guest, 1 vCPU, 512M and a silent serial port', () => {
    const config = fromObject({});
    expect(config).toMatchObject({
      kernel: join(root, 'guest-images', 'out', 'vmlinux'),
      initramfs: join(root, 'guest-images', 'out', 'initramfs.cpio.gz'),
      cmdline: '', cpus: { boot: 1 }, memory: { sizeBytes: 512 * 1024 * 1024 },
      serial: { kind: 'null' }, console: { kind: 'off' }, disks: [],
    });
    expect(config.vsock).toBeUndefined();
  });

  it('make the same VmConfig as the CLI strings for the same VM', () => {
    const socket = join(dir, 'vm.vsock');
    const object = fromObject({
      cpus: 2, cpuAffinity: [{ vcpu: 1, hostCpus: [0] }], memory: '1G', cmdline: 'quiet -- true', serial: { file: join(dir, 'boot.log') }, console: 'null',
      disks: [{ path: disk, readonly: true, id: 'root' }], vsock: { cid: 3, socket }, timeoutSeconds: 60,
    });
    const strings = fromStrings({
      cpus: 'boot=2,affinity=[1@[0]]', memory: '1G', cmdline: 'quiet -- true', serial: `file=${join(dir, 'boot.log')}`, console: 'null',
      disk: [`path=${disk},readonly=on,id=root`], vsock: [`cid=3,socket=${socket}`], timeout: '60',
    });
    expect(object).toEqual(strings);
  });

  it('take memory as bytes or as a size string, and pipe as a char mode', () => {
    expect(fromObject({ memory: 256 * 1024 * 1024 }).memory.sizeBytes).toBe(256 * 1024 * 1024);
    expect(fromObject({ memory: '256M' }).memory.sizeBytes).toBe(256 * 1024 * 1024);
    expect(fromObject({ serial: 'pipe', console: 'pipe' })).toMatchObject({ serial: { kind: 'pipe' }, console: { kind: 'pipe' } });
  });

  it('reject a mistake with the line the CLI prints', () => {
    expect(errorOf(() => fromObject({ cpus: 99 }))).toBe(errorOf(() => fromStrings({ cpus: '99' })));
    expect(errorOf(() => fromObject({ memory: '1M' }))).toBe(errorOf(() => fromStrings({ memory: '1M' })));
    expect(errorOf(() => fromObject({ vsock: { cid: 2, socket: join(dir, 'v.sock') } })))
      .toBe(errorOf(() => fromStrings({ vsock: [`cid=2,socket=${join(dir, 'v.sock')}`] })));
    expect(errorOf(() => fromObject({ kernel: join(dir, 'missing') }))).toBe(errorOf(() => fromStrings({ kernel: join(dir, 'missing') })));
    expect(errorOf(() => fromObject({ serial: 'tty', console: 'tty' }))).toMatch(/cannot both be tty/);
  });

  it('reject wrong types from JavaScript callers with one line, not a TypeError', () => {
    const untyped = (options: unknown) => errorOf(() => fromObject(options as VmStartOptions));
    expect(untyped({ cpus: '2' })).toBe('--cpus: must be a whole number, got "2"');
    expect(untyped({ cpus: 1.5 })).toBe('--cpus: must be a whole number, got 1.5');
    expect(untyped({ cpuAffinity: { 0: [0] } })).toMatch(/^--cpus: cpuAffinity must be an array/);
    expect(untyped({ cpus: 2, cpuAffinity: [0] })).toBe('--cpus: each cpuAffinity entry is { vcpu: N, hostCpus: [CPU, ...] }');
    expect(untyped({ memory: true })).toMatch(/^--memory: must be bytes or a size/);
    expect(untyped({ serial: 'loud' })).toMatch(/^--serial: unknown mode "loud"/);
    expect(untyped({ serial: { path: 'x' } })).toMatch(/^--serial: must be 'pipe'/);
    expect(untyped({ disks: ['disk.img'] })).toMatch(/^--disk: each disk is an object/);
    expect(untyped({ vsock: { cid: 3 } })).toMatch(/^--vsock: socket must be a path/);
    expect(untyped({ kernel: 42 })).toBe('--kernel: must be a path, got number');
    expect(untyped(null)).toBe('Vm.start: options must be an object');
  });
});
