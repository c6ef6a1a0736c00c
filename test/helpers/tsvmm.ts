// Runs the built CLI (dist/cli.js, what users run) from end-to-end tests.
// `npm test` compiles first; when running vitest by hand, run `npm run build`.
import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { VcpuAffinity } from '../../src/config.js';
import { projectRoot } from './guest-images.js';
import { runProcess, type ProcessResult } from './run-process.js';

export const cliPath = join(projectRoot, 'dist', 'cli.js');

/**
 * `TSVMM_E2E_TRACE=vsock,virtio` (any --trace list): every tsvmm a test
 * starts writes that trace to its own file in TSVMM_E2E_TRACE_DIR (default
 * the system's temporary folder), named after the process, for looking into
 * a failure after the fact.
 */
function traceArgs(): string[] {
  const categories = process.env.TSVMM_E2E_TRACE;
  if (!categories) return [];
  const dir = process.env.TSVMM_E2E_TRACE_DIR ?? tmpdir();
  tracedRuns += 1;
  return ['--trace', categories, '--trace-file', join(dir, `tsvmm-trace-${process.pid}-${tracedRuns}.txt`)];
}
let tracedRuns = 0;

/**
 * In the nested sandbox, every vCPU of a test guest runs on the sandbox's
 * CPU 0. Its multi-threaded TCG (QEMU 7.2 emulating AMD-V) lets a guest
 * whose vCPUs run on different sandbox CPUs execute stale code after the
 * guest kernel patches its own text: an "Oops: int3" or a vCPU that never
 * takes an interrupt again, under QEMU as under tsvmm, and never with the
 * vCPUs on one CPU (README, "The nested sandbox's own stability").
 */
const PIN_VCPUS = process.env.TSVMM_IN_SANDBOX === '1';
const PINNED_HOST_CPU = 0;

/** `--cpus` for a test guest with `count` vCPUs (pinned in the sandbox, see PIN_VCPUS). */
export function testCpus(count: number): string {
  const affinity = testCpuAffinity(count);
  if (!affinity) return `boot=${count}`;
  return `boot=${count},affinity=[${affinity.map(({ vcpu, hostCpus }) => `${vcpu}@[${hostCpus.join(',')}]`).join(',')}]`;
}

/** Vm.start()'s cpuAffinity for a test guest with `count` vCPUs (see PIN_VCPUS). */
export function testCpuAffinity(count: number): VcpuAffinity[] | undefined {
  if (!PIN_VCPUS || count < 2) return undefined;
  return Array.from({ length: count }, (_, vcpu) => ({ vcpu, hostCpus: [PINNED_HOST_CPU] }));
}

/** Runs tsvmm to completion. */
export function runTsvmm(args: string[], options: { timeoutMs?: number; input?: string } = {}): Promise<ProcessResult> {
  return runProcess(process.execPath, [cliPath, ...traceArgs(), ...args], { timeoutMs: options.timeoutMs ?? 120_000, input: options.input });
}

/**
 * A multi-line guest script as one word for the kernel command line: the
 * kernel hands init at most 32 arguments (more panics the guest: "Too many
 * boot init vars") and strips double quotes. So the script travels base64
 * encoded and runs from a file, not from a pipe its own commands could read.
 */
export function guestScriptCommand(script: string): string {
  return `echo ${Buffer.from(script).toString('base64')}|base64 -d>/tmp/script;sh /tmp/script`;
}

/**
 * The guest status device's address, as a guest command finds it: in the
 * kernel's parameters, before " -- " (the command itself is after it). The
 * kernel eats double quotes, and drops init's arguments from a second "--"
 * word on, hence " --" without its trailing space.
 */
export const STATUS_DEVICE = "$(sed -n 's/ --.*//;s/.*tsvmm.status=//p' /proc/cmdline)";

/** Boots the default guest, runs `command` through /init, and returns what tsvmm printed. */
export function runInGuest(command: string, extraArgs: string[] = [], timeoutMs = 120_000): Promise<ProcessResult> {
  return runTsvmm(['--cmdline', `quiet -- ${command}`, ...extraArgs], { timeoutMs });
}

/** A tsvmm left running (e.g. a guest serving vsock), with its output so far. */
export interface RunningTsvmm {
  readonly child: ChildProcess;
  readonly output: () => string;
  /** Resolves when the output matches, rejects on exit or after `timeoutMs`. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (SIGKILLs it after `timeoutMs`). */
  exit(timeoutMs?: number): Promise<number | null>;
}

/** `stdin: true` gives tsvmm a pipe as its standard input (child.stdin), for input typed step by step. */
export function startTsvmm(args: string[], options: { stdin?: boolean } = {}): RunningTsvmm {
  const child = spawn(process.execPath, [cliPath, ...traceArgs(), ...args], { stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  let output = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    output += chunk;
    for (const listener of listeners) listener();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

  return {
    child,
    output: () => output,
    waitForOutput(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = output.match(pattern);
          if (match) finish(() => resolve(match));
        };
        const timer = setTimeout(() => finish(() => reject(new Error(`timed out waiting for ${pattern}; output:\n${output.slice(-3000)}`))), timeoutMs);
        const finish = (then: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          then();
        };
        void exited.then((code) => finish(() => reject(new Error(`tsvmm exited (${code}) before ${pattern}; output:\n${output.slice(-3000)}`))));
        listeners.add(check);
        check();
      });
    },
    async exit(timeoutMs = 60_000) {
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
