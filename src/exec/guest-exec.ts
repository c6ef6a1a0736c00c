// vm.exec(): a command in the running guest, through its exec agent on vsock
// port AGENT_VSOCK_PORT. The agent starts early in the guest's init, but a
// caller may ask before it listens (the guest is still booting): until then
// the guest refuses the connection, and we try again, up to a deadline.
import { setTimeout as sleep } from 'node:timers/promises';
import type { VsockHost } from '../vsock-host/host.js';
import { VsockAbortError, VsockRefusedError, VsockTimeoutError } from '../vsock-host/errors.js';
import { ConfigError } from '../config/types.js';
import { ExecAbortError, ExecNoAgentError } from './errors.js';
import { execOverStream, type ExecOptions, type ExecResult } from './exec.js';
import { AGENT_VSOCK_PORT } from './protocol.js';

/** Options of vm.exec(). */
export interface GuestExecOptions extends ExecOptions {
  /** How long to wait for the agent to listen, e.g. while the guest boots (default {@link AGENT_WAIT_MS}). */
  agentWaitMs?: number;
}

/** The default wait for the agent: a boot under nested emulation can take tens of seconds. */
export const AGENT_WAIT_MS = 120_000;
/** Pause between connection attempts while the agent is not listening yet. */
const RETRY_MS = 100;

/** vm.exec() on a VM without a vsock device: the caller must give it one. */
export class ExecNeedsVsockError extends ConfigError {
  /** Always 'ExecNeedsVsockError'. */
  override readonly name = 'ExecNeedsVsockError';
}

export async function execInGuest(vsock: VsockHost | undefined, command: string, options: GuestExecOptions = {}): Promise<ExecResult> {
  if (vsock === undefined) {
    throw new ExecNeedsVsockError('vm.exec() talks to the guest over vsock: start the VM with a vsock option, e.g. vsock: { cid: 3, socket: "/tmp/vm.vsock" }');
  }
  const { agentWaitMs = AGENT_WAIT_MS, signal } = options;
  const deadline = Date.now() + agentWaitMs;
  for (;;) {
    const remainingMs = Math.max(1, deadline - Date.now());
    try {
      const socket = await vsock.connect(AGENT_VSOCK_PORT, { timeoutMs: remainingMs, signal });
      return await execOverStream(socket, command, options);
    } catch (error) {
      if (error instanceof VsockAbortError) throw abortError(command, signal!);
      if (error instanceof VsockTimeoutError) throw new ExecNoAgentError(command, AGENT_VSOCK_PORT, agentWaitMs, { cause: error });
      if (!(error instanceof VsockRefusedError)) throw error;
      if (Date.now() >= deadline) throw new ExecNoAgentError(command, AGENT_VSOCK_PORT, agentWaitMs, { cause: error });
    }
    await pause(RETRY_MS, signal, command);
  }
}

/** Waits `ms` before the next attempt; an abort during the wait rejects with ExecAbortError. */
async function pause(ms: number, signal: AbortSignal | undefined, command: string): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch {
    throw abortError(command, signal!); // sleep() rejects only when the signal aborts
  }
}

function abortError(command: string, signal: AbortSignal): ExecAbortError {
  return new ExecAbortError(command, signal.reason, { status: undefined, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) });
}
