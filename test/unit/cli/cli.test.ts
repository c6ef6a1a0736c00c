import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandLineError, InfoRequested, parseCommandLine, runCli } from '../../../src/cli.js';
import { ConfigError, type VmConfig } from '../../../src/config.js';
import { fakePackageRoot } from '../../helpers/fake-package.js';

let dir: string;
let root: string;
let kernel: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tsvmm-cli-'));
  root = fakePackageRoot(dir);
  kernel = join(dir, 'bzImage');
  writeFileSync(kernel, 'k');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const parse = (...argv: string[]) => parseCommandLine(argv, { packageRoot: root });

/** Runs the whole command with captured output and a fake VM. */
async function run(argv: string[], runVm: (config: VmConfig) => Promise<number> = async () => 0) {
  const out: string[] = [];
  const err: string[] = [];
  const status = await runCli(argv, {
    stdout: (text) => out.push(text),
    stderr: (text) => err.push(text),
    runVm,
    context: { packageRoot: root },
  });
  return { status, stdout: out.join(''), stderr: err.join('') };
}

describe('parseCommandLine', () => {
  it('parses Cloud Hypervisor style options', () => {
    const socket = join(dir, 'vm.vsock');
    const config = parse('--kernel', kernel, '--cpus', 'boot=2', '--memory', 'size=1G', '--vsock', `cid=3,socket=${socket}`, '--cmdline', 'quiet -- echo hi');
    expect(config).toEqual({
      kernel,
      cmdline: 'quiet -- echo hi',
      cpus: { boot: 2 },
      memory: { sizeBytes: 1 << 30 },
      serial: { kind: 'tty' },
      console: { kind: 'off' },
      disks: [],
      vsock: { cid: 3, socket },
    });
  });

  it('--timeout takes seconds (fractions too) and --boot-timer is a flag', () => {
    expect(parse('--timeout', '15', '--boot-timer')).toMatchObject({ timeoutSeconds: 15, bootTimer: true });
    expect(parse('--timeout=0.5').timeoutSeconds).toBe(0.5);
    expect(parse()).not.toHaveProperty('timeoutSeconds');
    expect(parse()).not.toHaveProperty('bootTimer');
  });

  it('refuses a --timeout that is not a positive number of seconds, in one line', async () => {
    for (const bad of ['0', '-1', 'soon', '1e3', '', '604801']) {
      const result = await run(['--timeout', bad]);
      expect(result.status, bad).toBe(2);
      expect(result.stderr, bad).toMatch(/^tsvmm: --timeout: ".*" is not a positive number of seconds up to 604800 \(e\.g\. --timeout 600\)\n$/);
    }
    expect((await run(['--timeout', '1', '--timeout', '2'])).stderr).toBe('tsvmm: --timeout: given 2 times; it takes one value\n');
  });

  it('takes a --cmdline that starts with "--" and the --opt=value form', () => {
    expect(parse('--cmdline', '-- echo hi').cmdline).toBe('-- echo hi');
    expect(parse('--cmdline=-- uname -a', '--cpus=3').cmdline).toBe('-- uname -a');
    expect(parse('--cpus=3').cpus.boot).toBe(3);
  });

  it('collects repeated --disk options in order', () => {
    const a = join(dir, 'a.img');
    const b = join(dir, 'b.img');
    writeFileSync(a, '');
    writeFileSync(b, '');
    expect(parse('--disk', `path=${a}`, '--disk', `path=${b},readonly=on`).disks).toEqual([
      { path: a, readonly: false },
      { path: b, readonly: true },
    ]);
  });

  it.each([
    [['--kernal', 'x'], "unknown option '--kernal' (Did you mean --kernel?)"],
    [['--kernel'], "option '--kernel <path>' argument missing"],
    [['--cpus', '2', '--cpus', '3'], '--cpus: given 2 times; it takes one value'],
    [['echo', 'hi'], 'unexpected argument "echo": tsvmm takes options only; arguments for the guest\'s init go inside --cmdline after " -- " (e.g. --cmdline "quiet -- echo hi")'],
    [['--', 'echo'], 'unexpected argument "echo": tsvmm takes options only; arguments for the guest\'s init go inside --cmdline after " -- " (e.g. --cmdline "quiet -- echo hi")'],
  ])('reports command-line mistake %j', (argv, message) => {
    let caught: unknown;
    try {
      parse(...argv);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(CommandLineError);
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as Error).message).toBe(message);
  });

  it('throws InfoRequested with the help text for --help', () => {
    let caught: unknown;
    try {
      parse('--help');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InfoRequested);
    const help = (caught as InfoRequested).output;
    expect(help).toMatch(/^Usage: tsvmm \[options\]/);
    for (const option of ['--kernel', '--initramfs', '--cmdline', '--cpus', '--memory', '--serial', '--console', '--disk', '--vsock', '--version']) {
      expect(help).toContain(option);
    }
    expect(help).toContain('Examples:');
    expect(help).toContain("printf 'CONNECT 1234\\nhello\\n' | socat - UNIX-CONNECT:/tmp/vm.vsock");
    expect(help).toContain('UNIX-LISTEN:/tmp/vm.vsock_5000');
    expect(help).toContain('--serial null --console tty');
  });
});

describe('runCli', () => {
  it('runs the VM with the parsed configuration and returns its status', async () => {
    let seen: VmConfig | undefined;
    const result = await run(['--kernel', kernel, '--memory', '128M'], async (config) => {
      seen = config;
      return 7;
    });
    expect(result).toEqual({ status: 7, stdout: '', stderr: '' });
    expect(seen?.memory.sizeBytes).toBe(128 * 1024 * 1024);
  });

  it('prints the version from package.json and exits 0', async () => {
    const result = await run(['--version']);
    expect(result).toEqual({ status: 0, stdout: '0.1.0\n', stderr: '' });
  });

  it('prints help on stdout and exits 0', async () => {
    const result = await run(['-h']);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('Usage: tsvmm');
    expect(result.stderr).toBe('');
  });

  it.each([
    [['--bogus'], "tsvmm: unknown option '--bogus'\n"],
    [['--memory', 'size=1M'], 'tsvmm: --memory: size=1M is too small: the guest needs at least 64M\n'],
    [['--kernel', '/nope/vmlinux'], 'tsvmm: --kernel: cannot read /nope/vmlinux: no such file\n'],
    [['--vsock', 'cid=2,socket=/tmp/x'], 'tsvmm: --vsock: CID 2 is the host (the guest connects to it); pick a CID from 3 to 4294967294\n'],
  ])('exits 2 with one line on stderr for %j', async (argv, line) => {
    let ran = false;
    const result = await run(argv, async () => {
      ran = true;
      return 0;
    });
    expect(result).toEqual({ status: 2, stdout: '', stderr: line });
    expect(ran).toBe(false);
  });

  it('exits 2 for a ConfigError raised while starting the VM, 1 for other failures', async () => {
    expect(await run(['--kernel', kernel], async () => { throw new ConfigError('--kernel: not an ELF or bzImage file'); })).toEqual({
      status: 2,
      stdout: '',
      stderr: 'tsvmm: --kernel: not an ELF or bzImage file\n',
    });
    expect(await run(['--kernel', kernel], async () => { throw new Error('cannot open /dev/kvm: permission denied'); })).toEqual({
      status: 1,
      stdout: '',
      stderr: 'tsvmm: cannot open /dev/kvm: permission denied (set TSVMM_DEBUG=1 for details)\n',
    });
  });
});
