#!/usr/bin/env node
// The `tsvmm` command: parses Cloud Hypervisor style options into a VmConfig
// and runs the VM. A user mistake (unknown option, bad value, missing file)
// prints one line, `tsvmm: <what is wrong>`, and exits with status 2. The VM
// code is imported only once the command line is known to be good, so
// `--help` and mistakes are instant.
import { Command, CommanderError } from 'commander';
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError, configFromOptions, type ConfigContext, type VmConfig, type VmOptionStrings } from './config.js';
import { debugEnabled } from './log.js';
import { TRACE_CATEGORIES } from './trace.js';

/** Exit status for a mistake on the command line (as most Unix tools use). */
export const EXIT_USAGE = 2;
/** Exit status when tsvmm itself failed. */
export const EXIT_FAILURE = 1;

/** The command line itself is wrong (unknown option, missing argument, stray argument). */
export class CommandLineError extends ConfigError {
  override readonly name = 'CommandLineError';
}

/** `--help` or `--version`: not an error, but nothing to run; `output` is what to print. */
export class InfoRequested extends Error {
  override readonly name = 'InfoRequested';
  constructor(readonly output: string) {
    super('help or version requested');
  }
}

const SINGLE_OPTIONS = ['kernel', 'initramfs', 'cmdline', 'cpus', 'memory', 'serial', 'console', 'timeout', 'trace', 'traceFile'] as const;

const HELP_NOTES = `
Serial port and console:
  tsvmm's kernel console is the serial port (ttyS0), so it defaults to
  --serial tty --console off. Cloud Hypervisor defaults the other way round
  (--serial null --console tty). Only one of them can be tty. On a terminal,
  keys go to the guest as typed, Ctrl-C included; Ctrl-A x quits tsvmm.

vsock (as in Cloud Hypervisor and Firecracker):
  host -> guest  connect to the socket and send "CONNECT <port>\\n"; tsvmm
                 answers "OK <host port>\\n", then bytes flow both ways.
  guest -> host  the guest connects to CID 2, port P; tsvmm connects to the
                 Unix socket <socket>_P, where a host program listens.

Examples:
  Boot the default guest (built by \`npm run images\`) to a shell:
    tsvmm
  Run a command in the default guest; init arguments go after " -- "
  INSIDE --cmdline:
    tsvmm --cmdline "quiet -- echo hello; nproc"
  Your own kernel, initramfs and command line, 2 vCPUs and 1 GiB of RAM:
    tsvmm --kernel bzImage --initramfs initrd.cpio.gz --cmdline "quiet" \\
          --cpus boot=2 --memory size=1G
  2 vCPUs, vCPU 0 on host CPUs 0-1, vCPU 1 on host CPU 2 (as taskset -c):
    tsvmm --cpus "boot=2,affinity=[0@[0-1],1@[2]]" --cmdline "quiet -- nproc"
  A read-only disk, /dev/vda in the guest, whose serial is "root":
    tsvmm --disk path=rootfs.ext4,readonly=on,id=root \\
          --cmdline "-- cat /sys/block/vda/serial"
  vsock, host -> guest:
    tsvmm --vsock cid=3,socket=/tmp/vm.vsock --cmdline "-- socat VSOCK-LISTEN:1234 -"
    printf 'CONNECT 1234\\nhello\\n' | socat - UNIX-CONNECT:/tmp/vm.vsock
  vsock, guest -> host:
    socat - UNIX-LISTEN:/tmp/vm.vsock_5000 &
    tsvmm --vsock cid=3,socket=/tmp/vm.vsock --cmdline "-- echo hi | socat - VSOCK-CONNECT:2:5000"
  Boot log to a file instead of the terminal:
    tsvmm --serial file=boot.log --cmdline "-- uname -a"
  In CI: the command's status becomes tsvmm's, a hung guest is stopped
  after 10 minutes (status 124), a kernel panic exits 101:
    tsvmm --timeout 600 --cmdline "quiet -- mount /dev/vda /mnt && /mnt/run-tests" \
          --disk path=tests.ext4,readonly=on
  Watch one vsock connection packet by packet, and the guest's MMIO accesses:
    tsvmm --trace vsock,mmio --trace-file trace.txt --vsock cid=3,socket=/tmp/vm.vsock
  How long the boot took, to the first instruction and to init:
    tsvmm --boot-timer --cmdline "quiet -- true"

Exit status:
  the guest's own (reported through its status device: the default guest
  reports its command's status), 0 when the guest resets or powers off
  without reporting one, 101 guest kernel panic, 1 guest died (triple
  fault, KVM error), 2 a mistake in the options, 124 --timeout ran out,
  130/143 SIGINT/SIGTERM. See the README's "Exit status" section.
`;

/** Each occurrence is kept so that a repeated single-value option can be reported. */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function buildProgram(output: { out: string[]; err: string[] }): Command {
  return new Command('tsvmm')
    .description('A micro-VMM in TypeScript: boots a Linux guest on KVM with a serial port, virtio-vsock, virtio-console and virtio-blk.')
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    .helpOption('-h, --help', 'print this help and exit')
    .option('--kernel <path>', 'guest kernel, ELF vmlinux or bzImage (default: guest-images/out/vmlinux)', collect)
    .option('--initramfs <path>', 'initial RAM disk (default with the default kernel: guest-images/out/initramfs.cpio.gz)', collect)
    .option('--cmdline <string>', 'kernel command line; arguments for init go after " -- " (tsvmm adds the console and device settings it needs)', collect)
    .option('--cpus <boot=N>', 'number of vCPUs, 1 to 32 (default: boot=1); affinity=[VCPU@[HOST CPUS],...] pins vCPU threads to host CPUs', collect)
    .option('--memory <size=N>', 'guest RAM in bytes, or with a K, M or G suffix, 64M to 64G (default: size=512M)', collect)
    .option('--serial <mode>', '8250 serial port, the kernel console (ttyS0): tty, off, null or file=PATH (default: tty)', collect)
    .option('--console <mode>', 'virtio-console (hvc0): tty, off, null or file=PATH (default: off)', collect)
    .option('--disk <options>', 'virtio-blk disk: path=PATH[,readonly=on|off][,id=NAME]; repeat for more disks', collect)
    .option('--vsock <options>', 'virtio-vsock device: cid=N,socket=PATH (N from 3 to 4294967294)', collect)
    .option('--timeout <seconds>', 'stop the VM after this many seconds; tsvmm then exits with status 124', collect)
    .option('--boot-timer', 'print on stderr when the guest ran its first instruction and when its init started')
    .option('--trace <list>', `print what the VM does, one line per event, on stderr: a comma-separated list of ${TRACE_CATEGORIES.join(', ')}, or all`, collect)
    .option('--trace-file <path>', 'write the --trace lines to this file instead of stderr', collect)
    .addHelpText('after', HELP_NOTES)
    .allowExcessArguments(true) // Reported by parseCommandLine with a hint instead of commander's message.
    .exitOverride()
    .configureOutput({
      writeOut: (text) => output.out.push(text),
      writeErr: (text) => output.err.push(text),
      outputError: () => {}, // Errors are rethrown as CommandLineError and printed by the caller.
    });
}

/**
 * Parses the arguments that follow the program name (process.argv.slice(2))
 * into a checked VmConfig. Throws ConfigError (CommandLineError for the
 * command line's own syntax) for user mistakes, InfoRequested for --help and
 * --version. Prints nothing.
 */
export function parseCommandLine(argv: string[], context: ConfigContext = {}): VmConfig {
  const output = { out: [] as string[], err: [] as string[] };
  const program = buildProgram(output);
  try {
    program.parse(argv, { from: 'user' });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') {
      throw new InfoRequested(output.out.join(''));
    }
    throw new CommandLineError(error.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' '));
  }
  const stray = program.args[0];
  if (stray !== undefined) {
    throw new CommandLineError(
      `unexpected argument "${stray}": tsvmm takes options only; arguments for the guest's init go inside --cmdline after " -- " (e.g. --cmdline "quiet -- echo hi")`,
    );
  }
  return configFromOptions(optionStrings(program.opts()), context);
}

/** The option as typed: commander's camelCase key back in kebab case (traceFile -> trace-file). */
function optionName(key: string): string {
  return key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}

function optionStrings(opts: Record<string, string[] | boolean | undefined>): VmOptionStrings {
  const strings: VmOptionStrings = {};
  for (const name of SINGLE_OPTIONS) {
    const values = opts[name];
    if (!Array.isArray(values)) continue;
    if (values.length > 1) throw new CommandLineError(`--${optionName(name)}: given ${values.length} times; it takes one value`);
    strings[name] = values[0];
  }
  if (Array.isArray(opts.disk)) strings.disk = opts.disk;
  if (Array.isArray(opts.vsock)) strings.vsock = opts.vsock;
  if (opts.bootTimer === true) strings.bootTimer = true;
  return strings;
}

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Runs the VM and returns its exit status (default: vm.ts's runVm, loaded on demand). */
  runVm?: (config: VmConfig) => Promise<number>;
  context?: ConfigContext;
  /** Show stack traces of unexpected errors (TSVMM_DEBUG=1). */
  debug?: boolean;
}

/** The whole command: parse, run, report. Returns the exit status. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let config: VmConfig;
  try {
    config = parseCommandLine(argv, io.context);
  } catch (error) {
    if (error instanceof InfoRequested) {
      io.stdout(error.output);
      return 0;
    }
    return reportError(error, io);
  }
  try {
    const runVm = io.runVm ?? (await import('./vm.js')).runVm;
    return await runVm(config);
  } catch (error) {
    return reportError(error, io);
  }
}

/** One line for a user mistake (status 2); one line, or a stack in debug mode, for a failure (status 1). */
function reportError(error: unknown, io: CliIo): number {
  if (error instanceof ConfigError) {
    io.stderr(`tsvmm: ${error.message}\n`);
    return EXIT_USAGE;
  }
  const message = error instanceof Error ? error.message : String(error);
  if (io.debug && error instanceof Error && error.stack) io.stderr(`tsvmm: ${error.stack}\n`);
  else io.stderr(`tsvmm: ${message}${io.debug ? '' : ' (set TSVMM_DEBUG=1 for details)'}\n`);
  return EXIT_FAILURE;
}

function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return manifest.version;
}

export async function main(): Promise<void> {
  const status = await runCli(process.argv.slice(2), {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    debug: debugEnabled(),
  });
  process.exit(status);
}

/** True when this file is the program being run (through the npm bin symlink too), not imported. */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) await main();
