// The library: what `import ... from 'tsvmm'` gives. Scripting a VM from
// TypeScript is the same path the CLI takes, one step at a time:
//
//   import { Vm, configFromOptions } from 'tsvmm';
//
//   const vm = await Vm.start(configFromOptions({
//     cmdline: 'quiet -- echo hello',             // the default guest when no kernel is given
//     serial: 'file=/tmp/boot.log',
//     vsock: ['cid=3,socket=/tmp/vm.vsock'],
//   }));
//   const exit = await vm.exited;                  // { reason: 'reset', status: 0 } when the guest is done
//
// configFromOptions() takes the CLI's option strings and checks them; a
// VmConfig built by hand should go through validateVmConfig(). Vm.start()
// throws ConfigError for what the caller can fix; vm.stop() stops the guest.
export { Vm, runVm, type BootTimes, type VmExit, type VmExitReason } from './vm.js';
export {
  VsockHost, VsockListener, DEFAULT_CONNECT_TIMEOUT_MS,
  VsockConnectError, VsockRefusedError, VsockTimeoutError, VsockUnreachableError, VsockAbortError, VsockListenError,
  type VsockHostOptions, type VsockConnectOptions, type VsockSocket, type VsockListenOptions,
  type VsockConnectionHandler, type VsockConnectTarget,
} from './vsock-host/index.js';
export {
  ConfigError, configFromOptions, validateVmConfig, defaultGuestImages,
  type CharMode, type DiskConfig, type VmConfig, type VmOptionStrings, type VsockConfig,
} from './config.js';
