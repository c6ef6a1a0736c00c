// Runs one command through the guest's exec agent over a stream that is
// already connected to it (for a VM, vsock.connect(AGENT_VSOCK_PORT)); the
// frames are in protocol.ts, the agent is guest-images/agent/tsvmm-agent.c.
//
// The stream belongs to the command: it carries one EXEC, and is destroyed
// when the promise settles, whatever the outcome. The agent kills the
// command's process group when its connection goes away before the exit
// status, so dropping the stream is always a way to stop a command.
import { constants } from 'node:os';
import type { Duplex } from 'node:stream';
import {
  ExecAbortError, ExecAgentError, ExecConnectionError, type ExecError, ExecProtocolError, ExecTimeoutError,
  type PartialExecOutput,
} from './errors.js';
import { encodeFrame, encodeU32Frame, type Frame, FrameDecoder, FrameType, readU32Payload } from './protocol.js';

/** Options of {@link execOverStream}. */
export interface ExecOptions {
  /** Bytes for the command's stdin (a string goes as UTF-8), then end of file; without it, stdin is empty. */
  stdin?: Buffer | string;
  /** Kill the command (its whole process group) when it runs longer; no limit by default. */
  timeoutMs?: number;
  /** Kill the command (its whole process group) when this aborts. */
  signal?: AbortSignal;
}

/** A command that ran to its end. */
export interface ExecResult {
  /** Its exit status, or 128 + n when signal n killed it (as shells report it). */
  status: number;
  /** Everything the command wrote to its stdout. */
  stdout: Buffer;
  /** Everything the command wrote to its stderr, kept apart from stdout. */
  stderr: Buffer;
}

/**
 * After a timeout or an abort sends KILL, how long the agent has to report
 * the command's end before the stream is closed (which kills it as well).
 */
export const KILL_GRACE_MS = 2_000;

/** Stdin goes in frames this large: big enough to be cheap, small enough to interleave with a KILL. */
const STDIN_CHUNK_BYTES = 64 * 1024;

function checkTimeout(timeoutMs: number): void {
  if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) {
    throw new RangeError(`timeoutMs ${timeoutMs} must be a positive number of milliseconds`);
  }
}

/**
 * Runs `command` with `/bin/sh -c` in the guest, through the exec agent at
 * the other end of `stream`, and resolves with its status and output once it
 * exits. Rejects with ExecTimeoutError or ExecAbortError after killing it,
 * ExecConnectionError when the stream ends or fails first, ExecAgentError
 * when the agent refuses the request, ExecProtocolError when the other end
 * is not the agent; RangeError for a timeoutMs that is not a positive number.
 */
export async function execOverStream(stream: Duplex, command: string, options: ExecOptions = {}): Promise<ExecResult> {
  const { timeoutMs, signal } = options;
  let exec: Buffer;
  try {
    if (timeoutMs !== undefined) checkTimeout(timeoutMs);
    exec = encodeFrame(FrameType.EXEC, Buffer.from(command, 'utf8'));
  } catch (error) {
    stream.destroy();
    throw error;
  }
  const stdin = typeof options.stdin === 'string' ? Buffer.from(options.stdin, 'utf8') : options.stdin ?? Buffer.alloc(0);
  if (signal?.aborted) {
    stream.destroy();
    throw new ExecAbortError(command, signal.reason, { status: undefined, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) });
  }

  return new Promise<ExecResult>((resolve, reject) => {
    const decoder = new FrameDecoder();
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let settled = false;
    let deadline: NodeJS.Timeout | undefined;
    let grace: NodeJS.Timeout | undefined;
    /** Set once a timeout or an abort has sent KILL: the error to reject with when the command is gone. */
    let stopping: ((output: PartialExecOutput) => ExecError) | undefined;

    const outputSoFar = (status: number | undefined): PartialExecOutput =>
      ({ status, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr) });

    const settle = (): void => {
      settled = true;
      clearTimeout(deadline);
      clearTimeout(grace);
      signal?.removeEventListener('abort', onAbort);
      stream.off('data', onData);
      stream.off('drain', writeStdin);
      stream.off('end', onEnd);
      stream.off('close', onEnd);
      stream.off('error', onError);
      // Errors of a stream being torn down are nobody's business any more.
      stream.on('error', () => {});
      stream.destroy();
    };
    const fail = (error: Error): void => {
      if (settled) return;
      settle();
      reject(error);
    };
    /** The connection is over before EXIT: expected if we were killing the command. */
    const connectionEnded = (otherwise: () => ExecConnectionError): void => {
      fail(stopping ? stopping(outputSoFar(undefined)) : otherwise());
    };

    const onFrame = (frame: Frame): void => {
      switch (frame.type) {
        case FrameType.STDOUT:
          stdout.push(frame.payload);
          return;
        case FrameType.STDERR:
          stderr.push(frame.payload);
          return;
        case FrameType.EXIT: {
          const status = readU32Payload(frame);
          if (status === undefined) {
            fail(new ExecProtocolError(`an EXIT frame of ${frame.payload.length} bytes (a status is 4)`));
          } else if (stopping) {
            fail(stopping(outputSoFar(status)));
          } else {
            const result = outputSoFar(status);
            settle();
            resolve({ status, stdout: result.stdout, stderr: result.stderr });
          }
          return;
        }
        case FrameType.ERROR:
          fail(new ExecAgentError(command, frame.payload.toString('utf8')));
          return;
        default:
          fail(new ExecProtocolError(`unexpected frame type 0x${frame.type.toString(16).padStart(2, '0')}`));
      }
    };
    const onData = (chunk: Buffer): void => {
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch (error) {
        fail(error as Error);
        return;
      }
      for (const frame of frames) {
        if (settled) return;
        onFrame(frame);
      }
    };
    const onEnd = (): void => connectionEnded(() =>
      new ExecConnectionError(command, 'the connection ended before the command\'s exit status'));
    const onError = (error: Error): void => connectionEnded(() =>
      new ExecConnectionError(command, error.message, { cause: error }));

    /** Sends KILL for the process group; if the agent does not report the end in time, drops the connection. */
    const stop = (makeError: (output: PartialExecOutput) => ExecError): void => {
      if (settled || stopping) return;
      stopping = makeError;
      stream.write(encodeU32Frame(FrameType.KILL, constants.signals.SIGKILL));
      grace = setTimeout(() => fail(makeError(outputSoFar(undefined))), KILL_GRACE_MS);
    };
    const onAbort = (): void => stop((output) => new ExecAbortError(command, signal?.reason, output));

    // Stdin goes as fast as the stream takes it: on backpressure, wait for 'drain'.
    let stdinSent = 0;
    let stdinEnded = false;
    const writeStdin = (): void => {
      while (!settled && !stdinEnded) {
        if (stdinSent < stdin.length) {
          const end = Math.min(stdinSent + STDIN_CHUNK_BYTES, stdin.length);
          const more = stream.write(encodeFrame(FrameType.STDIN, stdin.subarray(stdinSent, end)));
          stdinSent = end;
          if (!more) return;
        } else {
          stream.write(encodeFrame(FrameType.STDIN_EOF));
          stdinEnded = true;
          stream.off('drain', writeStdin);
        }
      }
    };

    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('close', onEnd);
    stream.on('error', onError);
    stream.on('drain', writeStdin);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (timeoutMs !== undefined) {
      deadline = setTimeout(() => stop((output) => new ExecTimeoutError(command, timeoutMs, output)), timeoutMs);
    }
    stream.write(exec);
    writeStdin();
  });
}
