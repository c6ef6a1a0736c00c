// The library: what `import ... from 'tsvmm'` gives. Scripting a VM from
// TypeScript is the same path the CLI takes:
//
//   import { Vm } from 'tsvmm';
//
//   await using vm = await Vm.start({
//     cmdline: 'quiet -- echo hello',             // the default guest when no kernel is given
//     serial: 'pipe',                             // vm.serial: the guest's console as a stream
//     vsock: { cid: 3, socket: '/tmp/vm.vsock' },  // vm.vsock.connect() / listen()
//   });
//   vm.serial!.pipe(process.stdout);
//   const exit = await vm.exited;                  // { reason: 'guest-status', status: 0 }
//
// Vm.start() rejects with ConfigError (the CLI's one line) for what the
// caller can fix; vm.stop(), an AbortSignal or leaving the `await using`
// scope stops the guest. The CLI's option strings go through
// configFromOptions() and Vm.startFromConfig().
export { TRACE_CATEGORIES, type TraceCategory, type TraceConfig } from './trace.js';
export { Vm, VmAbortedError, runVm, type BootTimes, type VmExit, type VmExitReason } from './vm.js';
// Vm.boot's types: where the kernel, its command line and its tables went in guest memory.
export {
  VsockHost, VsockListener, DEFAULT_CONNECT_TIMEOUT_MS,
  VsockConnectError, VsockRefusedError, VsockTimeoutError, VsockUnreachableError, VsockAbortError, VsockListenError,
  type VsockHostOptions, type VsockConnectOptions, type VsockSocket, type VsockListenOptions,
  type VsockConnectionHandler, type VsockConnectTarget,
} from './vsock-host/index.js';
export {
  AGENT_VSOCK_PORT, AGENT_WAIT_MS, execOverStream,
  ExecAbortError, ExecAgentError, ExecConnectionError, ExecError, ExecNeedsVsockError, ExecNoAgentError, ExecProtocolError,
  ExecTimeoutError, type ExecOptions, type ExecResult, type GuestExecOptions, type PartialExecOutput,
} from './exec/index.js';
export {
  ConfigError, configFromOptions, validateVmConfig, defaultGuestImages,
  configFromStartOptions,
  type CharMode, type CharOption, type ConfigContext, type DiskConfig, type DiskOption, type VmConfig, type VcpuAffinity, type VmOptionStrings, type VmStartOptions, type VsockConfig,
} from './config.js';
