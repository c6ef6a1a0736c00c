// The host's side of a VM's vsock, for programs that script the VM: connect
// to guest ports and listen for the guest's connections, through the Unix
// sockets of tsvmm's hybrid vsock. It keeps what it made, so that one close()
// ends every connection and listener and leaves no socket file behind.
import { setMaxListeners } from 'node:events';
import type net from 'node:net';
import { vsockSocketPathProblem } from '../config/rules.js';
import { VsockConfigError } from '../devices/virtio/vsock/device.js';
import { type VsockConnectOptions, type VsockSocket, checkVsockPort, connectToGuest } from './connect.js';
import { VsockListenError } from './errors.js';
import { guestConnectPath } from '../devices/virtio/vsock/unix-backend.js';
import { type VsockConnectionHandler, type VsockListenOptions, VsockListener } from './listen.js';

/** Options of the {@link VsockHost} constructor. */
export interface VsockHostOptions {
  /** Aborting it closes the VsockHost, as close() does. */
  signal?: AbortSignal;
}

/**
 * A VM's vsock seen from the host:
 *
 * ```ts
 * const vsock = new VsockHost('/tmp/vm.vsock');
 * const socket = await vsock.connect(1234);           // the guest listens on port 1234
 * const server = await vsock.listen(5000, (s) => s.pipe(s)); // the guest connects to CID 2 port 5000
 * await vsock.close();                                 // every connection and listener
 * ```
 *
 * `socketPath` is the VM's vsock `socket=` path. Nothing is opened until the
 * first connect or listen.
 */
export class VsockHost {
  /** Aborted by close(): stops connects under way. */
  private readonly lifetime = new AbortController();
  /** Every socket connect() made, from its creation to its 'close'. */
  private readonly sockets = new Set<net.Socket>();
  private readonly listeners = new Map<number, VsockListener | 'opening'>();
  private closing: Promise<void> | null = null;
  private readonly onExternalAbort = (): void => void this.close();

  constructor(
    /** The VM's vsock Unix socket (its `socket=` path). */
    readonly socketPath: string,
    private readonly options: VsockHostOptions = {},
  ) {
    // Each connect under way listens on the lifetime signal; dozens at once
    // are normal (vm.exec() runs one per command), not a listener leak.
    setMaxListeners(0, this.lifetime.signal);
    const problem = typeof socketPath === 'string' ? vsockSocketPathProblem(socketPath) : 'the socket path is not a string';
    if (problem !== undefined) throw new VsockConfigError(`vsock ${problem}`);
    if (options.signal?.aborted) this.onExternalAbort();
    else options.signal?.addEventListener('abort', this.onExternalAbort, { once: true });
  }

  /** True once close() was called (or the constructor's signal aborted). */
  get closed(): boolean {
    return this.closing !== null;
  }

  /**
   * Connects to `guestPort`, where a guest socket must listen. Resolves with
   * the connected socket once the guest accepted; rejects with a
   * VsockConnectError subclass: VsockRefusedError (nothing listens there, or
   * no answer from the guest), VsockTimeoutError, VsockUnreachableError (the
   * VM is gone), VsockAbortError (the signal, or close()).
   */
  connect(guestPort: number, options: VsockConnectOptions = {}): Promise<VsockSocket> {
    const signal = options.signal === undefined
      ? this.lifetime.signal
      : AbortSignal.any([this.lifetime.signal, options.signal]);
    return connectToGuest(this.socketPath, guestPort, { ...options, signal }, (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  /**
   * Listens for the guest's connections to host port `port` (the guest
   * connects to CID 2, port `port`): creates `<socketPath>_<port>` and calls
   * `handler` for each connection. Several ports can be listened on at once.
   * Throws VsockListenError when the path is taken (by a file that is not a
   * socket, or by a live listener; a stale socket file is replaced).
   */
  async listen(port: number, handler: VsockConnectionHandler, options: VsockListenOptions = {}): Promise<VsockListener> {
    checkVsockPort(port, 'host port');
    const fail = (reason: string) =>
      new VsockListenError(`cannot listen for guest connections to port ${port} on ${guestConnectPath(this.socketPath, port)}: ${reason}`);
    if (this.closed) throw fail('this VsockHost is closed');
    // Checked here, not by probing the path: a probe would reach our own listener's handler.
    if (this.listeners.has(port)) throw fail('this VsockHost already listens on that port');
    this.listeners.set(port, 'opening');
    let listener: VsockListener;
    try {
      listener = await VsockListener.open(this.socketPath, port, handler, options, () => {
        if (this.listeners.get(port) === listener) this.listeners.delete(port);
      });
    } catch (error) {
      this.listeners.delete(port);
      throw error;
    }
    if (this.closed) {
      // close() ran while the socket was being set up: it could not see this listener.
      this.listeners.delete(port);
      await listener.close();
      throw fail('this VsockHost was closed meanwhile');
    }
    this.listeners.set(port, listener);
    return listener;
  }

  /**
   * Closes every listener (removing its socket file) and every connection
   * this VsockHost made or accepted, and fails connects under way with
   * VsockAbortError. Resolves once every socket is closed. Idempotent.
   */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.options.signal?.removeEventListener('abort', this.onExternalAbort);
    this.lifetime.abort(new Error('the VsockHost was closed'));
    const waits: Promise<void>[] = [];
    for (const listener of this.listeners.values()) {
      if (listener !== 'opening') waits.push(listener.close());
    }
    for (const socket of this.sockets) {
      waits.push(new Promise<void>((resolve) => socket.once('close', () => resolve())));
      socket.destroy();
    }
    this.closing = Promise.all(waits).then(() => {});
    return this.closing;
  }
}
