// The host end of the hybrid vsock model: Unix sockets (Firecracker's and
// Cloud Hypervisor's docs/vsock.md). tsvmm listens on the configured path for
// host programs that want to reach a guest port, and connects to
// "<path>_<port>" when the guest connects to host port <port>.
import { existsSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { dirname } from 'node:path';
import { ConfigError } from '../../../config/types.js';
import { clearStaleSocket, errnoCode, type StaleSocketProblem } from './stale-socket.js';

export class VsockSocketError extends ConfigError {
  constructor(message: string) {
    super(message);
    this.name = 'VsockSocketError';
  }
}

/** The Unix socket tsvmm connects to when the guest connects to host port `port`. */
export function guestConnectPath(socketPath: string, port: number): string {
  return `${socketPath}_${port}`;
}

/** tsvmm's own socket: the refusal names the `socket=` option the user can change. */
function refuseSocketPath(path: string): (problem: StaleSocketProblem) => VsockSocketError {
  return (problem) => {
    switch (problem.kind) {
      case 'uninspectable':
        return new VsockSocketError(`cannot inspect the vsock socket path ${path}: ${problem.detail}`);
      case 'not-a-socket':
        return new VsockSocketError(
          `vsock socket path ${path} exists and is not a Unix socket; remove it or choose another socket= path`);
      case 'listened-on':
        return new VsockSocketError(
          `vsock socket path ${path} is in use by a running process (another tsvmm?); stop it or choose another socket= path`);
      case 'unprobeable':
        return new VsockSocketError(`cannot check the vsock socket ${path}: ${problem.detail}`);
      case 'unremovable':
        return new VsockSocketError(`cannot remove the stale vsock socket ${path}: ${problem.detail}`);
    }
  };
}

/** The listening socket host programs connect to. */
export class UnixListener {
  private closed = false;

  private constructor(readonly path: string, private readonly server: net.Server) {}

  /**
   * Listens on `path`, replacing a stale socket file. Accepted sockets are
   * half-open capable: a client's end() is a SHUTDOWN for the guest, not a close.
   */
  static async open(path: string, onConnection: (socket: net.Socket) => void): Promise<UnixListener> {
    if (!existsSync(dirname(path))) {
      // libuv reports this as EACCES, which sends people looking at permissions.
      throw new VsockSocketError(`cannot listen on vsock socket ${path}: directory ${dirname(path)} does not exist; create it first`);
    }
    await clearStaleSocket(path, refuseSocketPath(path));
    const server = net.createServer({ allowHalfOpen: true }, onConnection);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error) => {
        const hint = errnoCode(error) === 'EADDRINUSE' ? ' (another process just took it)' : '';
        reject(new VsockSocketError(`cannot listen on vsock socket ${path}${hint}: ${error.message}`));
      });
      server.listen({ path }, () => resolve());
    });
    server.on('error', () => {
      // Errors after listening (e.g. EMFILE on accept) only lose that client.
    });
    return new UnixListener(path, server);
  }

  /** Stops accepting and removes the socket file. Accepted sockets are the caller's to close. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.server.close();
    try {
      unlinkSync(this.path);
    } catch {
      // Already gone (libuv may unlink it itself when the server closes).
    }
  }
}

export class HostConnectError extends Error {
  constructor(readonly path: string, reason: string) {
    super(`cannot connect to host vsock listener ${path}: ${reason}`);
    this.name = 'HostConnectError';
  }
}

/** A connect in progress; cancel() abandons it without calling its callback. */
export interface PendingConnect {
  cancel(): void;
}

/** Delay before retrying a connect the listener's full backlog turned away (EAGAIN). */
const BACKLOG_RETRY_MS = 5;

/**
 * Connects to a host listener without blocking the event loop. `done` runs
 * once: with the connected socket (half-open capable), or with an error (no
 * such file, refused, or no success within `timeoutMs`). A full listen
 * backlog (EAGAIN, e.g. a burst of guest connects) is retried until then: a
 * blocking connect would simply have waited.
 */
export function connectToHostListener(
  path: string,
  timeoutMs: number,
  done: (result: net.Socket | HostConnectError) => void,
): PendingConnect {
  let settled = false;
  let socket: net.Socket | null = null;
  let retry: NodeJS.Timeout | undefined;
  const settle = (result: net.Socket | HostConnectError): void => {
    settled = true;
    clearTimeout(deadline);
    clearTimeout(retry);
    done(result);
  };
  const attempt = (): void => {
    const current = net.createConnection({ path, allowHalfOpen: true });
    socket = current;
    current.once('connect', () => {
      current.removeListener('error', onError);
      settle(current);
    });
    const onError = (error: Error): void => {
      current.destroy();
      if (settled) return;
      if (errnoCode(error) === 'EAGAIN') {
        retry = setTimeout(attempt, BACKLOG_RETRY_MS);
        return;
      }
      settle(new HostConnectError(path, errnoCode(error) ?? error.message));
    };
    current.once('error', onError);
  };
  const deadline = setTimeout(() => {
    if (settled) return;
    socket?.destroy();
    settle(new HostConnectError(path, `no answer within ${timeoutMs} ms`));
  }, timeoutMs);
  attempt();
  return {
    cancel(): void {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(retry);
      socket?.destroy();
    },
  };
}
