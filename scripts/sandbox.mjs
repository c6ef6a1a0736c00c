#!/usr/bin/env node
// The nested sandbox: runs a shell command inside a QEMU/TCG virtual machine
// whose emulated AMD-V CPU gives a real /dev/kvm to the processes inside.
//
//   npm run sandbox -- 'ls -l /dev/kvm && node --version'
//   npm run sandbox -- --timeout 600 'npx vitest run --config test/vitest.config.ts --project e2e'
//
// Why: this machine's /dev/kvm is PVM, which cannot run a stock Linux kernel
// (docs/architecture.md, "The development machines"). Inside the sandbox (the "L1" machine) a small kernel
// with KVM_AMD built in runs on QEMU's emulated svm + npt, so tsvmm and QEMU
// can boot real Linux guests there with -enable-kvm.
//
// The L1 machine sees the host's root filesystem read-only and the project
// directory read-write at the same path (virtio-9p), so node, node_modules,
// socat and qemu come from the host. Its init (guest-images/initramfs/
// sandbox-init) runs the command with the caller's environment and working
// directory, and the command's exit status becomes ours. Output arrives on
// the L1 serial console (stdout and stderr merged).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildGuestImages, outDir } from './build-guest-images.mjs';
import { ensureDebianPackages } from './lib/debian.mjs';

const projectDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');

// Environment variables passed into the sandbox (the rest stays outside).
const PASSED_ENV = /^(PATH|HOME|LANG|LC_\w+|TERM|CI|NODE_OPTIONS|FORCE_COLOR|NO_COLOR|TSVMM_\w+|VITEST_\w+|DEBUG)$/;

function qemuArguments({ kernel, initramfs, ctlDir, memory, cpus, verbose, name, cpuModel, tcgThreads, l1Parameters }) {
  const share = (tag, path, extra = '') => [
    '-fsdev', `local,id=${tag},path=${path},security_model=none,multidevs=remap${extra}`,
    '-device', `virtio-9p-device,fsdev=${tag},mount_tag=${tag}`,
  ];
  // tsc=reliable: under TCG the TSC follows the host clock, but on a loaded
  // host the clocksource watchdog sees starved vCPU threads as TSC skew and
  // falls back to jiffies, and nested KVM guests then stall.
  // no_timer_check: the same starvation once made the L1 kernel's check of
  // the IO-APIC timer fail ("IO-APIC + timer doesn't work!", a panic).
  const cmdline = ['console=ttyS0', 'reboot=t', 'panic=-1', 'rdinit=/init', 'tsc=reliable', 'no_timer_check', ...tscFrequencyParameter(),
    ...(verbose ? [] : ['quiet', 'loglevel=1']), ...l1Parameters];
  return [
    '-M', 'microvm,x-option-roms=off,isa-serial=on,rtc=on,pic=on,pit=on,acpi=off',
    '-accel', `tcg,thread=${tcgThreads}`, '-cpu', cpuModel, '-smp', String(cpus), '-m', memory,
    '-name', name, '-nodefaults', '-no-user-config', '-nographic', '-no-reboot',
    '-serial', 'stdio',
    '-kernel', kernel, '-initrd', initramfs, '-append', cmdline.join(' '),
    ...share('hostroot', '/', ',readonly=on'),
    ...share('project', projectDir),
    ...share('ctl', ctlDir),
  ];
}

/**
 * TCG gives the L1 machine the host's TSC. On a loaded host the L1 kernel
 * fails to calibrate it against the PIT ("Unable to calibrate against PIT"),
 * marks it unstable and leaves KVM without a TSC frequency; KVM then never
 * enters a guest (its vCPU threads spin in KVM_RUN, the guest prints
 * nothing). So tell the L1 kernel the frequency, when the host knows it.
 */
function tscFrequencyParameter() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const mhz = /^cpu MHz\s*:\s*([\d.]+)/m.exec(cpuinfo);
  if (!mhz || !/^flags\s*:.*\bconstant_tsc\b/m.test(cpuinfo)) return [];
  return [`tsc_early_khz=${Math.round(Number(mhz[1]) * 1000)}`];
}

/** The control folder the sandbox's init reads the command from. */
function writeControlFolder(command, cwd) {
  const ctlDir = mkdtempSync(join(tmpdir(), 'tsvmm-sandbox-'));
  const env = Object.entries(process.env)
    .filter(([name, value]) => PASSED_ENV.test(name) && value !== undefined && !value.includes('\n'))
    .map(([name, value]) => `${name}=${value}`);
  env.push('TSVMM_IN_SANDBOX=1');
  writeFileSync(join(ctlDir, 'command'), command);
  writeFileSync(join(ctlDir, 'cwd'), cwd);
  writeFileSync(join(ctlDir, 'env'), env.join('\n') + '\n');
  writeFileSync(join(ctlDir, 'project'), projectDir);
  writeFileSync(join(ctlDir, 'tty'), process.stdout.isTTY ? '1' : '0');
  return ctlDir;
}

/** Quotes arguments into one POSIX shell command line for runInSandbox(). */
export function shellCommand(args) {
  return args.map((a) => `'${String(a).replaceAll("'", "'\\''")}'`).join(' ');
}

/** The exit status when the L1 machine stopped without reporting the command's status. */
export const SANDBOX_DIED = 125;

/** QEMU's -cpu for the L1 machine: `max` offers AMD-V with nested paging under TCG. */
export const DEFAULT_CPU_MODEL = 'max';
/**
 * Multi-threaded TCG: each L1 vCPU on a host thread of its own. Its races
 * can crash the L1 kernel (README, "The nested sandbox's own stability":
 * 2 of 4 sessions of 2-vCPU fork/exec load, none with `--tcg single`), but
 * the end-to-end suite fails under single-threaded TCG (a 4-vCPU guest,
 * the piped-shell test and the vsock echoes, on 2026-12-01), so multi stays
 * the default and `--tcg single` is there for experiments.
 */
export const DEFAULT_TCG_THREADS = 'multi';

/**
 * Runs `command` in the sandbox; resolves with its exit status. Output goes
 * to `output` (default: our stdout). Never leaves QEMU or the control folder
 * behind: on timeout, SIGINT, SIGTERM or SIGHUP, QEMU is killed first.
 */
export async function runInSandbox(command, options = {}) {
  const {
    cwd = process.cwd(), timeoutSeconds = 3600, memory = '6G', cpus = 2, verbose = false,
    output = process.stdout, cpuModel = DEFAULT_CPU_MODEL, tcgThreads = DEFAULT_TCG_THREADS, l1Parameters = [],
  } = options;
  if (!cwd.startsWith(projectDir) && !existsSync(cwd)) throw new Error(`no such directory: ${cwd}`);
  await ensureDebianPackages(['qemu-system-x86']);
  await buildGuestImages({ sandbox: true, full: false, quiet: true });
  const ctlDir = writeControlFolder(command, cwd);
  const args = qemuArguments({
    kernel: join(outDir, 'sandbox-bzImage'), initramfs: join(outDir, 'sandbox-initramfs.cpio.gz'),
    ctlDir, memory, cpus, verbose, cpuModel, tcgThreads, l1Parameters,
    // A name in QEMU's command line lets tests find this sandbox's process.
    name: process.env.TSVMM_SANDBOX_NAME ?? `tsvmm-sandbox-${process.pid}`,
  });
  // stdin is not QEMU's: it would put a terminal in raw mode and swallow Ctrl-C.
  const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  qemu.stdout.pipe(output, { end: false });
  let qemuErrors = '';
  qemu.stderr.on('data', (chunk) => { qemuErrors += chunk; });

  let stopReason = null;
  const stop = (reason) => {
    if (stopReason !== null) return;
    stopReason = reason;
    qemu.kill('SIGTERM');
    setTimeout(() => qemu.kill('SIGKILL'), 5000).unref();
  };
  const onSignal = (signal) => stop(signal);
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  const timer = setTimeout(() => stop('timeout'), timeoutSeconds * 1000);

  try {
    const [code, signal] = await new Promise((done, fail) => {
      qemu.on('error', fail);
      qemu.on('exit', (c, s) => done([c, s]));
    });
    await new Promise((done) => (qemu.stdout.readableEnded ? done() : qemu.stdout.once('end', done)));
    if (stopReason === 'timeout') {
      console.error(`sandbox: the command ran longer than ${timeoutSeconds} s and was stopped`);
      return 124;
    }
    if (stopReason !== null) return 128 + (stopReason === 'SIGINT' ? 2 : stopReason === 'SIGHUP' ? 1 : 15);
    const statusFile = join(ctlDir, 'status');
    if (!existsSync(statusFile)) {
      console.error(`sandbox: the L1 machine stopped without reporting the command's status ` +
        `(QEMU ${code === null ? `signal ${signal}` : `exit ${code}`}).` +
        `${qemuErrors ? `\nQEMU said: ${qemuErrors.trim()}` : ''}\nRerun with --verbose to see the L1 kernel's messages.`);
      return SANDBOX_DIED;
    }
    return Number(readFileSync(statusFile, 'utf8').trim());
  } finally {
    clearTimeout(timer);
    for (const s of signals) process.off(s, onSignal);
    rmSync(ctlDir, { recursive: true, force: true });
  }
}

function usage() {
  return `usage: npm run sandbox -- [--timeout SECONDS] [--memory SIZE] [--cpus N] [--tcg single|multi] [--cpu-model MODEL] [--verbose] '<shell command>'

Runs the command inside the nested QEMU sandbox, in the current directory,
with a working /dev/kvm, and exits with the command's status.
  --timeout SECONDS  stop the sandbox after this long (default 3600; exit 124)
  --memory SIZE      L1 machine memory, QEMU syntax (default 6G)
  --cpus N           L1 vCPUs (default 2)
  --tcg MODE         QEMU's TCG threading for the L1 machine: single or multi (default ${DEFAULT_TCG_THREADS})
  --cpu-model MODEL  QEMU -cpu for the L1 machine (default ${DEFAULT_CPU_MODEL})
  --verbose          show the L1 kernel's boot messages

examples:
  npm run sandbox -- 'ls -l /dev/kvm && node --version'
  npm run sandbox -- 'exit 7'; echo $?      # prints 7`;
}

function parseArguments(argv) {
  const options = {};
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--help' || arg === '-h') return { help: true };
    else if (arg === '--timeout') options.timeoutSeconds = Number(value());
    else if (arg === '--memory') options.memory = value();
    else if (arg === '--cpus') options.cpus = Number(value());
    else if (arg === '--tcg') options.tcgThreads = value();
    else if (arg === '--cpu-model') options.cpuModel = value();
    else if (arg === '--verbose') options.verbose = true;
    else if (arg === '--') rest.push(...argv.slice(i + 1)), (i = argv.length);
    else rest.push(arg);
  }
  if (!(options.timeoutSeconds === undefined || options.timeoutSeconds > 0)) throw new Error('--timeout takes a number of seconds');
  if (!(options.cpus === undefined || (Number.isInteger(options.cpus) && options.cpus > 0))) throw new Error('--cpus takes a whole number');
  if (!(options.tcgThreads === undefined || ['single', 'multi'].includes(options.tcgThreads))) throw new Error('--tcg takes single or multi');
  if (rest.length === 0) throw new Error('no command given');
  return { options, command: rest.join(' ') };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  let parsed;
  try {
    parsed = parseArguments(process.argv.slice(2));
  } catch (error) {
    console.error(`sandbox: ${error.message}\n\n${usage()}`);
    process.exit(2);
  }
  if (parsed.help) {
    console.log(usage());
    process.exit(0);
  }
  try {
    process.exitCode = await runInSandbox(parsed.command, parsed.options);
  } catch (error) {
    console.error(`sandbox: ${error.message ?? error}`);
    process.exitCode = 1;
  }
}
