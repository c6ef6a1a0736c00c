// The host's side of a VM's vsock for library callers: connect to guest ports,
// listen for the guest's connections (see host.ts).
export { VsockHost, type VsockHostOptions } from './host.js';
export { DEFAULT_CONNECT_TIMEOUT_MS, type VsockConnectOptions, type VsockSocket } from './connect.js';
export { VsockListener, type VsockConnectionHandler, type VsockListenOptions } from './listen.js';
export {
  VsockAbortError, VsockConnectError, VsockListenError, VsockRefusedError, VsockTimeoutError, VsockUnreachableError,
  type VsockConnectTarget,
} from './errors.js';
