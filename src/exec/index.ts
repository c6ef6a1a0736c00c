// Running commands in the guest through its exec agent (tsvmm-agent): the
// protocol, the client over any connected stream, and what can go wrong.
export { execOverStream, KILL_GRACE_MS, type ExecOptions, type ExecResult } from './exec.js';
export {
  AGENT_VSOCK_PORT, encodeFrame, encodeU32Frame, type Frame, FrameDecoder, FrameType, FRAME_HEADER_BYTES,
  MAX_FRAME_PAYLOAD_BYTES, readU32Payload,
} from './protocol.js';
export { execInGuest, ExecNeedsVsockError, AGENT_WAIT_MS, type GuestExecOptions } from './guest-exec.js';
export {
  ExecAbortError, ExecAgentError, ExecConnectionError, ExecError, ExecNoAgentError, ExecProtocolError, ExecTimeoutError,
  type PartialExecOutput,
} from './errors.js';
