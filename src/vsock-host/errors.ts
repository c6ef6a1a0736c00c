// What can go wrong when a host program uses a VM's vsock through tsvmm's
// Unix sockets. A connect fails at run time for reasons that are nobody's
// mistake in particular (the guest is not listening yet, the VM exited), so
// the connect errors share a base class callers can catch at once and
// subclasses that say which. Problems with the listening path are the
// caller's to fix, so they are ConfigErrors like every such mistake in tsvmm.
import { ConfigError } from '../config/types.js';

/** Where a failed connect was going, for the messages and for callers. */
export interface VsockConnectTarget {
  /** tsvmm's vsock Unix socket (the VM's `socket=` path). */
  readonly socketPath: string;
  /** The guest port the connect asked for. */
  readonly guestPort: number;
}

function describeTarget({ socketPath, guestPort }: VsockConnectTarget): string {
  return `vsock connect to guest port ${guestPort} (through ${socketPath})`;
}

/**
 * A connect to a guest port failed. The subclasses name the usual reasons;
 * this class itself is thrown for the rest (an unexpected errno on the Unix
 * socket, or a peer that does not speak tsvmm's `CONNECT`/`OK` protocol).
 */
export class VsockConnectError extends Error {
  /** tsvmm's vsock Unix socket the connect went through (the VM's `socket=` path). */
  readonly socketPath: string;
  /** The guest port the connect asked for. */
  readonly guestPort: number;

  constructor(target: VsockConnectTarget, reason: string, options?: ErrorOptions) {
    super(`${describeTarget(target)} failed: ${reason}`, options);
    this.name = 'VsockConnectError';
    this.socketPath = target.socketPath;
    this.guestPort = target.guestPort;
  }
}

/**
 * tsvmm closed the connection without an `OK` line: no guest socket listens
 * on that port (the guest answered with a reset), the guest did not answer
 * within tsvmm's deadline (2 s by default), its vsock driver is not running,
 * or tsvmm is at its connection limit. Retrying makes sense while the guest
 * is still starting its listener.
 */
export class VsockRefusedError extends VsockConnectError {
  constructor(target: VsockConnectTarget) {
    super(target, 'the guest refused it (nothing listens on that port, or the guest did not answer in time)');
    this.name = 'VsockRefusedError';
  }
}

/** No `OK` line within the caller's `timeoutMs` (reaching the socket included). */
export class VsockTimeoutError extends VsockConnectError {
  /** How long the connect was given, in milliseconds: the caller's `timeoutMs`, or {@link DEFAULT_CONNECT_TIMEOUT_MS}. */
  readonly timeoutMs: number;

  constructor(target: VsockConnectTarget, timeoutMs: number) {
    super(target, `no answer within ${timeoutMs} ms`);
    this.name = 'VsockTimeoutError';
    this.timeoutMs = timeoutMs;
  }
}

/** Why nobody answers on the Unix socket, by errno. */
const UNREACHABLE_REASONS: Readonly<Record<string, string>> = {
  ENOENT: 'the socket file does not exist (no VM with this vsock socket, or it has exited)',
  ECONNREFUSED: 'nothing listens on the socket file (the VM that made it has exited)',
};

/** The VM is gone, or was never there: tsvmm's socket is missing (ENOENT) or dead (ECONNREFUSED). */
export class VsockUnreachableError extends VsockConnectError {
  /** The errno from connecting to the Unix socket: 'ENOENT' or 'ECONNREFUSED'. */
  readonly code: string;

  constructor(target: VsockConnectTarget, code: string) {
    super(target, `${code}: ${UNREACHABLE_REASONS[code] ?? 'nobody answers on the socket'}`);
    this.name = 'VsockUnreachableError';
    this.code = code;
  }

  /** True for the errnos this class stands for. */
  static isUnreachableCode(code: string | undefined): code is string {
    return code !== undefined && code in UNREACHABLE_REASONS;
  }
}

/**
 * The connect was abandoned: the caller's AbortSignal fired, or the VsockHost
 * was closed. Its `name` is 'AbortError', as for every aborted operation in
 * Node and the web platform, and `cause` is the signal's reason.
 */
export class VsockAbortError extends VsockConnectError {
  constructor(target: VsockConnectTarget, reason: unknown) {
    super(target, 'aborted', { cause: reason });
    this.name = 'AbortError';
  }
}

/**
 * `<socket>_<port>` cannot be listened on: the path is taken by a file that
 * is not a socket or by a live listener, its directory is missing, or this
 * VsockHost already listens on that port or is closed.
 */
export class VsockListenError extends ConfigError {
  constructor(message: string) {
    super(message);
    this.name = 'VsockListenError';
  }
}
