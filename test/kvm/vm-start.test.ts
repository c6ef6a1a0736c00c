// Vm.startFromConfig() on this machine's /dev/kvm with a tiny kernel (a
// reset through the i8042): the vCPU workers are started before the kernel
// is opened, so that they load while the VM is built, and each runs the vCPU
// it is then given; when building the VM fails, at any step, no worker is
// left running, and a process whose VM failed to start exits on its own.
//
// Worker creation and file opens are observed by wrapping node:worker_threads'
// Worker and node:fs's openSync for the sources (vi.mock).
import type { Worker } from 'node:worker_threads';
import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { configFromStartOptions } from '../../src/config.js';
import type { VmConfig } from '../../src/config.js';
import { Vm } from '../../src/vm.js';
import { describeRun, runProcess } from '../helpers/run-process.js';
import { tinyElfKernel } from '../helpers/tiny-elf-kernel.js';
import { hasKvm } from './tiny-guest.js';

const recorded = vi.hoisted(() => ({
  /** The files this test writes are in a directory whose name starts so; opens of them are recorded. */
  scratchPrefix: 'tsvmm-vm-start-',
  /** 'worker started' and 'open <path>', in the order they happened. */
  steps: [] as string[],
  /** Workers started and not yet ended. */
  running: new Set<Worker>(),
}));

vi.mock('node:worker_threads', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:worker_threads')>();
  class RecordingWorker extends original.Worker {
    constructor(...args: ConstructorParameters<typeof original.Worker>) {
      super(...args);
      recorded.steps.push('worker started');
      recorded.running.add(this);
      this.on('exit', () => recorded.running.delete(this));
    }
  }
  return { ...original, Worker: RecordingWorker };
});

vi.mock('node:fs', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:fs')>();
  const openSync = ((path: unknown, ...rest: unknown[]) => {
    if (typeof path === 'string' && path.includes(recorded.scratchPrefix)) recorded.steps.push(`open ${path}`);
    return (original.openSync as (...args: unknown[]) => unknown)(path, ...rest);
  }) as typeof original.openSync;
  return { ...original, openSync };
});

const scratch = mkdtempSync(join(tmpdir(), recorded.scratchPrefix));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Loaded at 16 MiB: `mov al, 0xfe; out 0x64, al` (the i8042's reset), then `hlt` forever. */
const RESET_CODE = [0xb0, 0xfe, 0xe6, 0x64, 0xf4, 0xeb, 0xfd];
const resetKernel = join(scratch, 'reset-vmlinux');
writeFileSync(resetKernel, tinyElfKernel(0x100_0000, RESET_CODE));
const notAKernel = join(scratch, 'not-a-kernel');
writeFileSync(notAKernel, 'CONFIG_VIRTIO_MMIO=y\n'.repeat(100));

const VCPUS = 2;
const config: VmConfig = configFromStartOptions({ kernel: resetKernel, memory: '128M', cpus: VCPUS });

function threadCount(): number {
  return readdirSync('/proc/self/task').length;
}

/** What this process's fds are open on (`/dev/kvm`, `anon_inode:kvm-vm`, ...), sorted: a failure names the leak. */
function openFds(): string[] {
  return readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      return [readlinkSync(`/proc/self/fd/${fd}`)];
    } catch {
      return []; // closed meanwhile (the directory's own fd, for one)
    }
  }).sort();
}

beforeEach(() => {
  recorded.steps = [];
});

describe.skipIf(!hasKvm)('Vm.startFromConfig() on /dev/kvm, with a kernel that resets at once', () => {
  it('starts the vCPU workers before it opens the kernel (once), and runs the vCPUs in them', async () => {
    const vm = await Vm.startFromConfig(config);
    const exit = await vm.exited;
    expect(exit).toMatchObject({ reason: 'reset', status: 0 });
    expect(vm.bootTimes.firstInstruction).toBeDefined();
    // One worker per vCPU, all started before the kernel was opened: no other was needed.
    expect(recorded.steps).toEqual([...Array<string>(VCPUS).fill('worker started'), `open ${resetKernel}`]);
    expect(recorded.running.size).toBe(0);
  });

  it('a VM aborted while it was being built stops, and its workers with it', async () => {
    const abort = new AbortController();
    const starting = Vm.startFromConfig(config, { signal: abort.signal });
    abort.abort();
    const exit = await (await starting).exited;
    // The reset may come first: either way the VM ends, and every thread with it.
    expect(['aborted', 'reset']).toContain(exit.reason);
    expect(recorded.running.size).toBe(0);
  });

  // Each fails at its own step of the set-up: opening a device, reading the kernel, placing it.
  const failures: [string, VmConfig, RegExp][] = [
    ['a disk that cannot be opened', { ...config, disks: [{ path: join(scratch, 'no-such.img'), readonly: true }] }, /no-such\.img/],
    ['a kernel removed after the configuration was checked', { ...config, kernel: join(scratch, 'removed-vmlinux') }, /--kernel: cannot read/],
    ['a file that is not a kernel', { ...config, kernel: notAKernel }, /is neither an ELF vmlinux nor a bzImage/],
  ];

  it('a VM that cannot be built leaves no worker thread and no fd behind', async () => {
    // A first failure, so that the baselines include what the process starts
    // once and keeps (libuv's thread pool, ...).
    await expect(Vm.startFromConfig(failures[0]![1])).rejects.toThrow();
    const threadsBefore = threadCount();
    const fdsBefore = openFds();
    // Each a few times: a worker ended while it loads leaked an fd only now and then.
    for (const [what, failing, message] of [...failures, ...failures, ...failures]) {
      recorded.steps = [];
      await expect(Vm.startFromConfig(failing), what).rejects.toThrow(message);
      expect(recorded.steps.filter((step) => step === 'worker started'), what).toHaveLength(VCPUS);
      expect(recorded.running.size, what).toBe(0);
      // Waited for, as other parts of the test process open and close fds and threads of their own.
      await vi.waitFor(() => {
        expect(openFds(), what).toEqual(fdsBefore);
        expect(threadCount(), what).toBe(threadsBefore);
      }, { timeout: 5_000 });
    }
  }, 90_000); // each failure waits for its workers to load, which under test means compiling TypeScript

  it('a process whose Vm.start() failed exits on its own: no worker keeps it alive', async () => {
    const script = 'const { Vm } = await import(process.argv[1]);'
      + 'await Vm.startFromConfig(JSON.parse(process.argv[2])).then(() => console.log("started"), (error) => console.log(error.name));';
    const result = await runProcess(process.execPath, [
      '--import', new URL('../support/register-typescript-hooks.mjs', import.meta.url).href, '--input-type=module', '-e', script,
      new URL('../../src/vm.ts', import.meta.url).href, JSON.stringify({ ...config, kernel: notAKernel }),
    ], { timeoutMs: 25_000 });
    expect({ timedOut: result.timedOut, code: result.code, stdout: result.stdout }, describeRun(result))
      .toEqual({ timedOut: false, code: 0, stdout: 'KernelImageError\n' });
  });
});
