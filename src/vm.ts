// A virtual machine, from configuration to exit status. This file is the
// table of contents of tsvmm: it opens KVM, gives the guest RAM, puts the
// devices on their buses, loads the kernel the way the Linux boot protocol
// wants, runs each vCPU in a worker thread (started first, so that it loads
// while the rest is built) and waits until the guest resets, powers off or
// dies, or tsvmm is asked to stop. Each step lives in its own module; read
// them in the order they are called here.
import {
  DEFAULT_KERNEL_PARAMS, GUEST_STATUS_SIZE, GUEST_STATUS_START, KVM_IDENTITY_MAP_ADDRESS,
  KVM_TSS_ADDRESS, buildCmdline, ramRegions, writeBootMemory, type BootMemory, type BootMemoryInput,
} from './arch/x86_64/index.js';
import { Bus } from './bus/bus.js';
import type { Duplex } from 'node:stream';
import { ConfigError, configFromStartOptions, type VmConfig, type VmStartOptions } from './config.js';
import type { CharBackend } from './devices/char-backend.js';
import { GuestStatusDevice, guestStatusParameter } from './devices/guest-status.js';
import { openCharBackend, restoreTerminal } from './devices/host-char-backend.js';
import { openBlockDevice } from './devices/virtio/block/index.js';
import { VirtioConsole } from './devices/virtio/console.js';
import type { VirtioDevice } from './devices/virtio/device.js';
import { createVsockDevice } from './devices/virtio/vsock/device.js';
import { FdWatcher } from './sys/fd-watcher.js';
import { guestLog } from './log.js';
import { openTraceSink, trace, type TraceConfig } from './trace.js';
import { KvmCap } from './kvm/ioctls.js';
import { Kvm } from './kvm/kvm.js';
import type { VmFd } from './kvm/vm-fd.js';
import type { GuestMemory } from './memory/guest-memory.js';
import { allocateGuestRam, registerGuestRam } from './memory/ram.js';
import { PrestartedVcpuWorkers } from './vcpu/prestarted-workers.js';
import { VcpuSet } from './vcpu/vcpu-set.js';
import type { VcpuThread } from './vcpu/vcpu-thread.js';
import { BootTimer, formatBootTimes, type BootTimes } from './vm/boot-timer.js';
import { CleanupStack } from './vm/cleanup-stack.js';
import { PanicWatch, resetWasPanic } from './vm/guest-panic.js';
import { ImageFile } from './vm/image-file.js';
import { VsockHost } from './vsock-host/index.js';
import { execInGuest, type ExecResult, type GuestExecOptions } from './exec/index.js';
import { createLegacyDevices } from './vm/legacy-devices.js';
import { applyVcpuBootState } from './vm/vcpu-boot-state.js';
import { placeVirtioDevice } from './vm/virtio-slots.js';
import {
  aborted, guestEndedVerdict, guestPanicked, guestReportedExit, stoppedBySignal, timedOut, vcpuStoppedVerdict,
  type GuestEvidence, type VmExit,
} from './vm/vm-exit.js';

export type { VmExit, VmExitReason } from './vm/vm-exit.js';
export type { BootTimes } from './vm/boot-timer.js';

/**
 * A running VM, made by Vm.start() (or Vm.startFromConfig()). It runs until
 * the guest ends (exit status, power-off, reset, panic) or is stopped
 * (`stop()`, its AbortSignal, its timeout); `exited` then says how it ended.
 * The host sides of its devices are `serial`, `console` and `vsock`;
 * `exec()` runs commands in the guest.
 */
export class Vm {
  /** The kernel command line the guest was given. */
  readonly cmdline: string;
  /**
   * Where the boot structures were placed (tests compare the guest's e820 printout with this).
   * @internal Boot internals, not part of the library's API.
   */
  readonly boot: BootMemory;
  /** Resolves once the VM has stopped and released everything. */
  readonly exited: Promise<VmExit>;
  /** Resolves when the guest's init signals its start (never, if it does not). */
  readonly initStarted: Promise<BootTimes>;
  /**
   * The host's side of the guest's vsock, when the VM has a vsock device:
   * connect to guest ports, listen for the guest's connections to CID 2.
   * Closed (every connection and listener, their socket files removed) when the VM stops.
   */
  readonly vsock: VsockHost | undefined;
  /**
   * With `serial: 'pipe'`: the serial port (the guest's console) as a stream.
   * Read the guest's output from it, write the guest's input to it; it ends
   * when the VM stops. Unread output holds the guest back, nothing is dropped.
   */
  readonly serial: Duplex | undefined;
  /** With `console: 'pipe'`: the virtio-console (hvc0) as a stream, as `serial`. */
  readonly console: Duplex | undefined;

  private stopRequested: ((exit: VmExit) => void) | undefined;

  private constructor(
    boot: BootMemory,
    private readonly vcpus: readonly VcpuThread[],
    private readonly cleanup: CleanupStack,
    private readonly bootTimer: BootTimer,
    initStarted: Promise<BootTimes>,
    vsock: VsockHost | undefined,
    streams: { serial: Duplex | undefined; console: Duplex | undefined },
  ) {
    this.boot = boot;
    this.vsock = vsock;
    this.serial = streams.serial;
    this.console = streams.console;
    this.cmdline = boot.cmdline.text;
    this.initStarted = initStarted;
    const stopped = new Promise<VmExit>((resolve) => { this.stopRequested = resolve; });
    this.exited = stopped.then((exit) => this.shutDown(exit));
  }

  /** The boot timer's figures so far: ms since the process started, for each mark reached. */
  get bootTimes(): BootTimes {
    return this.bootTimer.times;
  }

  /**
   * Builds the VM and starts its vCPUs:
   *
   *     await using vm = await Vm.start({ cmdline: 'quiet -- echo hi', serial: 'pipe' });
   *     vm.serial!.pipe(process.stdout);
   *     const exit = await vm.exited;         // { reason: 'guest-status', status: 0 }
   *
   * Rejects with a ConfigError (the one line the CLI would print) for a
   * problem with what was asked: a bad option, a missing kernel, no KVM, ...;
   * nothing is left open when it rejects. Prints nothing unless asked (the
   * serial port defaults to 'null').
   */
  static async start(options: VmStartOptions = {}): Promise<Vm> {
    return Vm.startFromConfig(configFromStartOptions(options), { signal: options.signal });
  }

  /**
   * Vm.start() for a VmConfig already made: by configFromOptions() from the
   * CLI's option strings, or by hand and checked with validateVmConfig().
   */
  static async startFromConfig(config: VmConfig, options: { signal?: AbortSignal } = {}): Promise<Vm> {
    const { signal } = options;
    if (signal?.aborted) throw new VmAbortedError('Vm.start: the signal was already aborted');
    const bootTimer = new BootTimer();
    const cleanup = new CleanupStack();
    let vm: Vm | undefined;
    const requestStop = (exit: VmExit) => vm?.stop(exit);
    let initSignalled: (times: BootTimes) => void = () => {};
    const initStarted = new Promise<BootTimes>((resolve) => { initSignalled = resolve; });
    try {
      if (config.trace !== undefined) startTrace(config.trace, cleanup);
      const kvm = Kvm.open();
      cleanup.push('/dev/kvm', () => kvm.close());
      // The vCPU threads start now and load their modules (tens of ms of CPU)
      // while this thread builds the VM; each is given its vCPU in startAll().
      const vcpuWorkers = new PrestartedVcpuWorkers(config.cpus.boot);
      cleanup.push('the vCPU workers not given a vCPU', () => vcpuWorkers.endUnused());
      // RAM before the VM, so that it is freed after the VM is closed.
      const ram = allocateGuestRam(config.memory.sizeBytes, ramRegions(config.memory.sizeBytes));
      cleanup.push('guest RAM', () => ram.free());
      const vmFd = kvm.createVm();
      cleanup.push('the KVM VM', () => vmFd.close());
      createInterruptControllers(vmFd);
      registerGuestRam(vmFd, ram);

      // The guest's verdict: what it reports through the status device, or
      // a kernel panic, seen in guest RAM at the reset or on its console.
      const guestStatus = new GuestStatusDevice({
        onExit: (status) => requestStop(guestReportedExit(status)),
        onInitStarted: () => { if (bootTimer.markInit()) initSignalled(bootTimer.times); },
      });
      const panicWatch = new PanicWatch((reason) => requestStop(guestPanicked(reason)));
      const evidence = (): GuestEvidence => ({
        kernelPanicked: resetWasPanic(ram.memory) || panicWatch.reason !== undefined,
        panicReason: panicWatch.reason,
        reportedStatus: guestStatus.reportedStatus,
      });
      const guestEndedOnItsOwn = (how: 'reset' | 'poweroff') => guestEndedVerdict(how, evidence());

      const quit = () => requestStop({ reason: 'quit', status: 0, message: 'stopped at the user\'s request (Ctrl-A x)' });
      const watchConsole = (bytes: Uint8Array) => panicWatch.feed(bytes);
      const serialBackend = openBackend(config.serial, cleanup, 'serial', quit, watchConsole);
      const consoleBackend = openBackend(config.console, cleanup, 'console', quit, watchConsole);

      const legacy = createLegacyDevices(
        vmFd, serialBackend, () => requestStop(guestEndedOnItsOwn('reset')), () => requestStop(guestEndedOnItsOwn('poweroff')));
      cleanup.push('legacy devices', () => legacy.close());

      const watcher = new FdWatcher();
      cleanup.push('the eventfd watcher', () => watcher.close());
      const mmio = new Bus('MMIO', 'mmio');
      // One set for all vCPUs: their device accesses are served in one order
      // (src/vcpu/vcpu-set.ts). Its threads stop before the vCPU fds close.
      const vcpuSet = new VcpuSet({ buses: { pio: legacy.pio, mmio } });
      cleanup.push('the vCPU threads', () => vcpuSet.stopAll());
      mmio.register(GUEST_STATUS_START, GUEST_STATUS_SIZE, guestStatus, 'guest status');
      const devices = await createVirtioDevices(config, consoleBackend, cleanup);
      // Pushed after the device, so released before it: callers' connections
      // and listener files go before tsvmm's own socket does.
      const vsock = config.vsock === undefined ? undefined : new VsockHost(config.vsock.socket);
      if (vsock !== undefined) cleanup.push('the vsock host side', () => vsock.close());
      const placedDevices = devices.map((device, slot) => {
        const placed = placeVirtioDevice(
          { vm: vmFd, mmio, memory: ram.memory, watcher, drainPostedWrites: () => vcpuSet.drainPostedWrites() }, device, slot);
        cleanup.push(device.name, () => placed.detach());
        return placed;
      });
      // Devices are announced twice: on the command line for kernels without
      // ACPI (or booted with acpi=off), and in the ACPI tables' DSDT for the
      // others. A kernel that has both takes the DSDT's and refuses the
      // command line's copies (see the README's kernel requirements).
      const kernelParameters = placedDevices.map((placed) => placed.kernelParameter);
      kernelParameters.push(guestStatusParameter(GUEST_STATUS_START));

      bootTimer.mark('devicesReady');
      const cmdline = buildCmdline(config.cmdline, {
        defaults: defaultKernelParameters(Boolean(serialBackend), Boolean(consoleBackend)),
        required: kernelParameters,
      });
      const boot = writeBootFiles(ram.memory, config, {
        cmdline,
        ramSize: config.memory.sizeBytes,
        cpuCount: config.cpus.boot,
        acpi: { serial: Boolean(serialBackend), virtioSlots: placedDevices.map((placed) => placed.slot) },
      });

      bootTimer.mark('bootImage');
      const supportedCpuid = kvm.supportedCpuid();
      const tscDeadline = kvm.checkExtension(KvmCap.TSC_DEADLINE_TIMER) > 0;
      const vcpuFds = Array.from({ length: config.cpus.boot }, (_, index) => {
        const vcpu = vmFd.createVcpu(index);
        cleanup.push(`vCPU ${index}`, () => vcpu.close());
        applyVcpuBootState(vcpu, {
          supportedCpuid, tscDeadline, vcpuCount: config.cpus.boot, boot: index === 0 ? boot : undefined,
        });
        return vcpu;
      });

      const vcpus = vcpuFds.map((vcpu, index) => vcpuSet.add({
        vcpu,
        hostCpus: config.cpus.affinity?.find((entry) => entry.vcpu === index)?.hostCpus,
        ...legacy.workerAnsweredReads,
        onExit: (exit) => requestStop(vcpuStoppedVerdict(exit, evidence())),
        onFirstRun: index === 0 ? (at) => bootTimer.markFirstInstruction(at) : undefined,
      }));
      vm = new Vm(boot, vcpus, cleanup, bootTimer, initStarted, vsock, { serial: serialBackend?.callerEnd, console: consoleBackend?.callerEnd });
      bootTimer.mark('vcpusStarting');
      await vcpuSet.startAll(vcpuWorkers); // If one cannot start, those started are stopped before it throws.
      if (signal !== undefined) {
        const onAbort = () => requestStop(aborted());
        signal.addEventListener('abort', onAbort, { once: true });
        cleanup.push('the abort signal listener', () => signal.removeEventListener('abort', onAbort));
        if (signal.aborted) onAbort(); // Aborted while the VM was being built.
      }
      if (config.timeoutSeconds !== undefined) {
        const seconds = config.timeoutSeconds;
        const timer = setTimeout(() => requestStop(timedOut(seconds)), seconds * 1000);
        cleanup.push('the timeout', () => clearTimeout(timer));
      }
      return vm;
    } catch (error) {
      // A mistake in what was asked is a ConfigError (every user-error class
      // extends it: test/unit/errors.test.ts checks), shown as one line.
      await cleanup.releaseAll();
      throw error;
    }
  }

  /**
   * Runs `command` with /bin/sh in the running guest, through the exec agent
   * the default initramfs starts (docs/exec-agent.md), and resolves with its
   * status (128 + n when signal n killed it) and its stdout and stderr, kept
   * apart, as Buffers. Several may run at once. Needs a vsock device; waits
   * for the agent while the guest boots (`agentWaitMs`). Rejects with an
   * ExecError subclass when the command did not run to its end: timeout
   * (`timeoutMs`, it is killed in the guest), abort (`signal`), the VM stopped.
   */
  exec(command: string, options: GuestExecOptions = {}): Promise<ExecResult> {
    return execInGuest(this.vsock, command, options);
  }

  /** `await using vm = ...`: stops the VM and waits until everything is released. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** Asks the VM to stop (idempotent); `exited` resolves when it has. */
  stop(exit: VmExit = { ...stoppedBySignal('SIGTERM'), message: 'stopped' }): Promise<VmExit> {
    this.stopRequested?.(exit);
    this.stopRequested = undefined;
    return this.exited;
  }

  private async shutDown(exit: VmExit): Promise<VmExit> {
    await Promise.all(this.vcpus.map((vcpu) => vcpu.stop()));
    const failures = await this.cleanup.releaseAll();
    guestLog.flush(); // The last window's "N more suppressed", if any.
    if (failures.length > 0 && exit.status === 0) {
      return { ...exit, status: 1, message: failures.map((f) => f.message).join('; ') };
    }
    return exit;
  }
}

/**
 * The CLI's entry point: runs the VM until it stops, with SIGINT/SIGTERM
 * stopping it cleanly, and returns tsvmm's exit status.
 */
export async function runVm(config: VmConfig): Promise<number> {
  const vm = await Vm.startFromConfig(config);
  const onSignal = (signal: 'SIGINT' | 'SIGTERM') => vm.stop(stoppedBySignal(signal));
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let bootTimesPrinted = false;
  const printBootTimes = () => {
    if (!config.bootTimer || bootTimesPrinted) return;
    bootTimesPrinted = true;
    process.stderr.write(`tsvmm: ${formatBootTimes(vm.bootTimes)}\n`);
  };
  void vm.initStarted.then(printBootTimes);
  try {
    const exit = await vm.exited;
    restoreTerminal();
    printBootTimes(); // Also when init never signalled: then it says so.
    if (exit.message) process.stderr.write(`tsvmm: ${exit.message}\n`);
    return exit.status;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** KVM_SET_TSS_ADDR, KVM_SET_IDENTITY_MAP_ADDR, the in-kernel PIC/IOAPIC/LAPICs and PIT. */
function createInterruptControllers(vm: VmFd): void {
  vm.setTssAddress(KVM_TSS_ADDRESS);
  vm.setIdentityMapAddress(KVM_IDENTITY_MAP_ADDRESS);
  vm.createIrqchip();
  vm.createPit2();
}

/**
 * The console goes where the user can see it: ttyS0 when the serial port is
 * on, else hvc0. The user's own parameters come after these, so theirs win.
 * No early console (`earlyprintk=ttyS0`), as Firecracker and Cloud
 * Hypervisor add none: it costs two port exits per character of the boot
 * log, with interrupts off, before the serial driver starts; a user whose
 * kernel dies that early adds it (README, "Kernel command line").
 */
function defaultKernelParameters(serial: boolean, virtioConsole: boolean): string[] {
  const others = DEFAULT_KERNEL_PARAMS.filter((p) => !p.startsWith('console='));
  if (serial) return ['console=ttyS0', ...others];
  if (virtioConsole) return ['console=hvc0', ...others];
  return others;
}

/** Opens a character device's host side; everything the guest writes to it is also shown to `watch`. */
function openBackend(
  mode: VmConfig['serial'], cleanup: CleanupStack, what: string, onQuitRequest: () => void, watch: (bytes: Uint8Array) => void,
): CharBackend | undefined {
  if (mode.kind === 'off') return undefined;
  const backend = openCharBackend(mode, { onQuitRequest });
  cleanup.push(`the ${what} output`, () => backend.close());
  return {
    callerEnd: backend.callerEnd,
    write: (data) => { watch(data); return backend.write(data); },
    onDrain: (callback) => backend.onDrain(callback),
    onInput: (callback) => backend.onInput(callback),
    close: () => backend.close(),
  };
}

async function createVirtioDevices(config: VmConfig, consoleBackend: CharBackend | undefined, cleanup: CleanupStack): Promise<VirtioDevice[]> {
  const devices: VirtioDevice[] = [];
  const add = (device: VirtioDevice) => {
    devices.push(device);
    if (device.close) cleanup.push(device.name, () => device.close!());
  };
  for (const disk of config.disks) add(await openBlockDevice(disk));
  if (consoleBackend) add(new VirtioConsole(consoleBackend));
  if (config.vsock) {
    add(await createVsockDevice({
      cid: config.vsock.cid,
      socketPath: config.vsock.socket,
      // Refused connections and dropped packets: quiet unless asked for, rate-limited.
      onWarning: (message) => guestLog.report('virtio-vsock', message),
    }));
  }
  return devices;
}

/** `--trace`: every layer writes to the process's tracer (src/trace.ts) until the VM stops. */
function startTrace(config: TraceConfig, cleanup: CleanupStack): void {
  let sink;
  try {
    sink = openTraceSink(config.file);
  } catch (error) {
    throw new ConfigError(`--trace-file: cannot open ${config.file}: ${(error as NodeJS.ErrnoException).code ?? error}`);
  }
  trace.configure(config.categories, sink.fd);
  cleanup.push('the trace', () => {
    trace.reset();
    sink.close();
  });
}

/** Vm.start() was given an AbortSignal that had already fired: no VM was built. */
export class VmAbortedError extends Error {
  /** Always 'VmAbortedError'. */
  override readonly name = 'VmAbortedError';
}

/**
 * writeBootMemory() with the kernel and initramfs files: the loaders read
 * them straight into guest RAM, and they are closed as soon as that is done
 * (or has failed).
 */
function writeBootFiles(
  memory: GuestMemory, config: VmConfig, input: Omit<BootMemoryInput, 'kernel' | 'kernelName' | 'initramfs'>,
): BootMemory {
  const kernel = ImageFile.open(config.kernel, '--kernel');
  try {
    const initramfs = config.initramfs === undefined ? undefined : ImageFile.open(config.initramfs, '--initramfs');
    try {
      return writeBootMemory(memory, { ...input, kernel, kernelName: config.kernel, initramfs });
    } finally {
      initramfs?.close();
    }
  } finally {
    kernel.close();
  }
}

