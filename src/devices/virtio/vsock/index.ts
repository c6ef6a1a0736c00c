// virtio-vsock with the hybrid Unix-socket backend: what the rest of tsvmm uses.
export { VSOCK_DEFAULTS, VsockConfigError, VsockDevice, createVsockDevice, type VsockDeviceOptions } from './device.js';
export { HostConnectError, VsockSocketError } from './unix-backend.js';
