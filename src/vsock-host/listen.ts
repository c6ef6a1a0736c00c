// A host program listening for the guest: when the guest connects to CID 2
// port P, tsvmm connects to the Unix socket "<socket>_<P>" (README, "vsock").
// This file owns that socket file: it clears a stale one the way tsvmm does
// for its own socket (src/devices/virtio/vsock/unix-backend.ts), refuses a
// path that is not a socket or that a live process listens on, and removes
// the file when the listener closes.
import { existsSync } from 'node:fs';
import net from 'node:net';
import { dirname } from 'node:path';
import { clearStaleSocket, errnoCode, type StaleSocketProblem } from '../devices/virtio/vsock/stale-socket.js';
import { guestConnectPath } from '../devices/virtio/vsock/unix-backend.js';
import { checkVsockPort } from './connect.js';
import { VsockListenError } from './errors.js';

/** Called once per guest connection with the connected socket. */
export type VsockConnectionHandler = (socket: net.Socket) => void;

/** Options of {@link VsockHost.listen}. */
export interface VsockListenOptions {
  /**
   * Keep our sending side open when the guest shuts down its own (as
   * net.Server's option; default false: the socket ends when the guest's
   * stream ends).
   */
  allowHalfOpen?: boolean;
}


/** The refusal for a `<socket>_<port>` path, in the words of `fail`. */
function refuseListenPath(fail: (reason: string) => VsockListenError): (problem: StaleSocketProblem) => VsockListenError {
  return (problem) => {
    switch (problem.kind) {
      case 'uninspectable':
        return fail(problem.detail);
      case 'not-a-socket':
        return fail('the path exists and is not a Unix socket; remove it or use another vsock socket path');
      case 'listened-on':
        return fail('another process listens there');
      case 'unprobeable':
        return fail(`cannot check whether a process listens there: ${problem.detail}`);
      case 'unremovable':
        return fail(`cannot remove the stale socket file: ${problem.detail}`);
    }
  };
}

/**
 * Listens on `<socket>_<port>` for the guest's connections to host port
 * `port`. Made by {@link VsockHost.listen}.
 */
export class VsockListener {
  private readonly sockets = new Set<net.Socket>();
  private closing: Promise<void> | null = null;

  private constructor(
    /** The host port the guest connects to (CID 2). */
    readonly port: number,
    /** The Unix socket file tsvmm connects to, `<socket>_<port>`. */
    readonly path: string,
    private readonly server: net.Server,
    private readonly onClosed: () => void,
  ) {}

  /**
   * Creates `<socketPath>_<port>`, replacing a stale socket file, and calls
   * `handler` for every guest connection. `onClosed` runs once close() starts.
   */
  static async open(
    socketPath: string,
    port: number,
    handler: VsockConnectionHandler,
    options: VsockListenOptions = {},
    onClosed: () => void = () => {},
  ): Promise<VsockListener> {
    checkVsockPort(port, 'host port');
    const path = guestConnectPath(socketPath, port);
    const fail = (reason: string) => new VsockListenError(`cannot listen for guest connections to port ${port} on ${path}: ${reason}`);
    if (!existsSync(dirname(path))) {
      // libuv reports this as EACCES, which sends people looking at permissions.
      throw fail(`directory ${dirname(path)} does not exist`);
    }
    await clearStaleSocket(path, refuseListenPath(fail));
    const server = net.createServer({ allowHalfOpen: options.allowHalfOpen ?? false });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error) => {
        const hint = errnoCode(error) === 'EADDRINUSE' ? 'another process just took the path' : error.message;
        reject(fail(hint));
      });
      server.listen({ path }, () => resolve());
    });
    server.on('error', () => {
      // After listen, errors (EMFILE on accept) lose only that connection.
    });
    const listener = new VsockListener(port, path, server, onClosed);
    server.on('connection', (socket: net.Socket) => listener.accept(socket, handler));
    return listener;
  }

  /** Guest connections accepted and not closed yet. */
  get connectionCount(): number {
    return this.sockets.size;
  }

  private accept(socket: net.Socket, handler: VsockConnectionHandler): void {
    if (this.closing !== null) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    // The guest may reset a connection at any time: without a listener of
    // the caller's own, that closes the socket instead of crashing the process.
    socket.on('error', () => {});
    handler(socket);
  }

  /**
   * Stops listening, removes the socket file and closes (destroys) the
   * connections it accepted. Resolves once all of them are closed.
   */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.onClosed();
    // libuv unlinks a listening Unix socket's path as it closes it, before
    // closing the fd, so no other process's socket that takes the path
    // later can be removed by mistake (uv__pipe_close in libuv's unix/pipe.c).
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    this.closing = closed;
    return closed;
  }
}
