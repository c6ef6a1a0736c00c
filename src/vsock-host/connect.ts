// A host program's connect to a guest port through tsvmm's vsock Unix socket:
// connect, send "CONNECT <port>\n", read "OK <host port>\n", and hand over the
// socket itself, carrying the stream from its first byte. tsvmm never says
// why it turns a connect away; it just closes the socket (README, "vsock"),
// so a close before the OK line means the guest refused.
import net from 'node:net';
import {
  VsockAbortError, VsockConnectError, type VsockConnectTarget, VsockRefusedError, VsockTimeoutError,
  VsockUnreachableError,
} from './errors.js';
import { MAX_VSOCK_PORT } from '../devices/virtio/vsock/packet.js';
import { OkLineReader } from './ok-line.js';

/**
 * The default deadline for a connect. tsvmm itself answers within 2 s (its
 * deadline for the guest's accept); the rest is slack for a loaded machine,
 * and for VMMs of the same protocol with longer deadlines.
 */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/**
 * Delay before retrying a connect that tsvmm's full listen backlog turned
 * away (EAGAIN: Node's Unix-socket connects do not block, a burst of
 * connects can fill the backlog); a blocking connect would simply have waited.
 */
const BACKLOG_RETRY_MS = 5;

/** Options of {@link VsockHost.connect}. */
export interface VsockConnectOptions {
  /**
   * How long the whole connect may take, from reaching the Unix socket to the
   * guest's accept (default {@link DEFAULT_CONNECT_TIMEOUT_MS}); past it the
   * connect fails with VsockTimeoutError.
   */
  timeoutMs?: number;
  /** Abandons the connect while it is under way (VsockAbortError); the connected socket is not affected. */
  signal?: AbortSignal;
  /**
   * Keep our sending side open when the guest shuts down its own (as
   * net.Socket's option; default false: the socket ends when the guest's
   * stream ends).
   */
  allowHalfOpen?: boolean;
}

/**
 * A connected vsock stream: a net.Socket whose first bytes are the guest's
 * first bytes, plus the two ports that name the connection. Errors on it are
 * emitted to the caller's listeners as usual; without one, an error closes
 * the socket instead of crashing the process (a guest may reset a
 * connection at any time).
 */
export type VsockSocket = net.Socket & {
  /** The guest port connected to. */
  readonly guestPort: number;
  /** The host port tsvmm gave the connection (from the OK line); the guest sees it as the peer's port. */
  readonly hostPort: number;
};

function errnoOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/** Throws RangeError for a port that is not a u32. */
export function checkVsockPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 0 || port > MAX_VSOCK_PORT) {
    throw new RangeError(`${what} ${port} is not a vsock port: give an integer from 0 to ${MAX_VSOCK_PORT}`);
  }
}

function checkTimeout(timeoutMs: number): void {
  if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) {
    throw new RangeError(`timeoutMs ${timeoutMs} must be a positive number of milliseconds`);
  }
}

/**
 * Connects to `guestPort` through tsvmm's vsock socket at `socketPath`.
 * `onSocket` sees every socket the connect creates, as soon as it exists
 * (VsockHost keeps them, to close them on close()).
 */
export async function connectToGuest(
  socketPath: string,
  guestPort: number,
  options: VsockConnectOptions = {},
  onSocket: (socket: net.Socket) => void = () => {},
): Promise<VsockSocket> {
  checkVsockPort(guestPort, 'guest port');
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  checkTimeout(timeoutMs);
  const target: VsockConnectTarget = { socketPath, guestPort };
  const { signal } = options;
  if (signal?.aborted) throw new VsockAbortError(target, signal.reason);

  return new Promise<VsockSocket>((resolve, reject) => {
    let socket: net.Socket | null = null;
    let settled = false;
    let retry: NodeJS.Timeout | undefined;

    const settle = (): void => {
      settled = true;
      clearTimeout(deadline);
      clearTimeout(retry);
      signal?.removeEventListener('abort', onAbort);
    };
    const fail = (error: VsockConnectError): void => {
      if (settled) return;
      settle();
      socket?.destroy();
      reject(error);
    };
    const onAbort = (): void => fail(new VsockAbortError(target, signal?.reason));
    const deadline = setTimeout(() => fail(new VsockTimeoutError(target, timeoutMs)), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });

    const attempt = (): void => {
      const current = net.createConnection({ path: socketPath, allowHalfOpen: options.allowHalfOpen ?? false });
      socket = current;
      onSocket(current);
      const reader = new OkLineReader();
      let connected = false;

      const detach = (): void => {
        current.off('connect', onConnect);
        current.off('readable', onReadable);
        current.off('end', onGone);
        current.off('close', onGone);
        current.off('error', onError);
      };
      const onConnect = (): void => {
        connected = true;
        current.write(`CONNECT ${guestPort}\n`);
      };
      const onReadable = (): void => {
        // read() without a size takes everything buffered: the OK line, and maybe data after it.
        for (let chunk: Buffer | null; (chunk = current.read() as Buffer | null) !== null;) {
          const result = reader.push(chunk);
          if (result.kind === 'incomplete') continue;
          if (result.kind === 'invalid') {
            fail(new VsockConnectError(target, `expected "OK <port>" from the socket, got ${JSON.stringify(result.received)} (is it a tsvmm vsock socket?)`));
            return;
          }
          detach();
          // Put back what followed the line: it is the guest's first data.
          // With our 'readable' listener gone the socket returns to its
          // initial mode, so a 'data' listener or pipe() starts it flowing.
          if (result.rest.length > 0) current.unshift(result.rest);
          current.on('error', () => {});
          settle();
          resolve(Object.defineProperties(current, {
            guestPort: { value: guestPort, enumerable: true },
            hostPort: { value: result.hostPort, enumerable: true },
          }) as VsockSocket);
          return;
        }
      };
      // The end of the stream before an OK line: tsvmm turned us away.
      const onGone = (): void => fail(new VsockRefusedError(target));
      const onError = (error: Error): void => {
        const code = errnoOf(error);
        if (!connected && code === 'EAGAIN') {
          detach();
          current.destroy();
          retry = setTimeout(attempt, BACKLOG_RETRY_MS);
          return;
        }
        if (!connected && VsockUnreachableError.isUnreachableCode(code)) {
          fail(new VsockUnreachableError(target, code));
        } else if (connected && (code === 'ECONNRESET' || code === 'EPIPE')) {
          // tsvmm closed the socket while our CONNECT line was still in flight.
          fail(new VsockRefusedError(target));
        } else {
          fail(new VsockConnectError(target, error.message, { cause: error }));
        }
      };
      current.once('connect', onConnect);
      current.on('readable', onReadable);
      current.on('end', onGone);
      current.on('close', onGone);
      current.on('error', onError);
    };
    attempt();
  });
}
