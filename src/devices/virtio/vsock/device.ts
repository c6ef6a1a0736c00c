// The virtio-vsock device (virtio 1.x spec 5.10): device type 19, three
// queues (rx 0, tx 1, event 2), a config space holding the guest's CID, and
// no feature bits of its own (stream sockets only; VERSION_1 comes from the
// transport). The real work happens in the muxer; this file is the glue
// between the virtio transport and it, plus the listening Unix socket.
import type net from 'node:net';
import { vsockSocketPathProblem } from '../../../config/rules.js';
import { ConfigError } from '../../../config/types.js';
import type { DeviceContext, VirtioDevice } from '../device.js';
import { VIRTIO_F_RING_EVENT_IDX, VirtioDeviceType } from '../device.js';
import type { Virtqueue } from '../queue.js';
import type { ConnectionState } from './connection.js';
import { EVENT_QUEUE, RX_QUEUE, TX_QUEUE, VsockMuxer } from './muxer.js';
import { EVENT_SIZE, EVENT_TRANSPORT_RESET, HOST_CID } from './packet.js';
import { UnixListener } from './unix-backend.js';

export interface VsockDeviceOptions {
  /** The guest's context id: 3 to 2^32-2 (0-2 are reserved, 2^32-1 means "any"). */
  readonly cid: number;
  /** tsvmm listens here; guest connections to port P go to `${socketPath}_${P}`. */
  readonly socketPath: string;
  /** Live connections allowed at once (default 1023); the next one is refused at once. */
  readonly maxConnections?: number;
  /**
   * Host clients that have not sent their whole CONNECT line yet, at most
   * (default 1023, as many as live connections); one more closes the oldest.
   * They do not count against maxConnections.
   */
  readonly maxPendingClients?: number;
  /** How long a host client has, from its accept, to send its whole CONNECT line (default 10000 ms). */
  readonly connectLineTimeoutMs?: number;
  /** Per-connection buffer in each direction, advertised to the guest as buf_alloc (default 256 KiB). */
  readonly connectionBufferSize?: number;
  /** How long the guest has to accept a host-initiated connection (default 2000 ms). */
  readonly requestTimeoutMs?: number;
  /** How long connecting to `${socketPath}_${P}` may take (default 2000 ms). */
  readonly connectTimeoutMs?: number;
  /** How long a connection whose directions are both done waits for the guest's RST, counted from when our SHUTDOWN both is owed (default 2000 ms). */
  readonly lingerTimeoutMs?: number;
  /** Size offered for each queue (default 256). */
  readonly queueSize?: number;
  /**
   * Offer VIRTIO_F_RING_EVENT_IDX (default false). The queues implement it
   * and it saves two thirds of the interrupts (bench:vsock), but a Linux
   * guest's exec stream stalled once with it under load (2026-12-01) and
   * the cause is not found yet: off for guests until it is.
   */
  readonly eventIdx?: boolean;
  /** Receives one line per refused packet or client; silent by default. */
  readonly onWarning?: (message: string) => void;
}

export const VSOCK_DEFAULTS = {
  maxConnections: 1023,
  maxPendingClients: 1023,
  // A program sends its CONNECT line with, or right after, its connect: it
  // takes microseconds. 10 s also leaves time for a person typing the line
  // into an interactive `socat - UNIX-CONNECT:...`, while a client that
  // never sends it (a slowloris) gives its socket back soon.
  connectLineTimeoutMs: 10_000,
  connectionBufferSize: 256 * 1024,
  requestTimeoutMs: 2000,
  connectTimeoutMs: 2000,
  lingerTimeoutMs: 2000,
  queueSize: 256,
} as const;

const MAX_GUEST_CID = 0xffff_fffe;
const CONFIG_SIZE = 8;

export class VsockConfigError extends ConfigError {
  constructor(message: string) {
    super(message);
    this.name = 'VsockConfigError';
  }
}

function validate(options: VsockDeviceOptions): void {
  const { cid, socketPath } = options;
  if (!Number.isInteger(cid) || cid <= HOST_CID || cid > MAX_GUEST_CID) {
    throw new VsockConfigError(
      `vsock cid=${cid} is not usable: give the guest a CID from 3 to ${MAX_GUEST_CID} (0-2 are reserved)`);
  }
  if (typeof socketPath !== 'string' || socketPath.length === 0) {
    throw new VsockConfigError('vsock needs socket=<path> for its Unix socket');
  }
  const pathProblem = vsockSocketPathProblem(socketPath);
  if (pathProblem !== undefined) throw new VsockConfigError(`vsock ${pathProblem}`);
  for (const name of ['maxConnections', 'maxPendingClients', 'connectLineTimeoutMs', 'connectionBufferSize', 'requestTimeoutMs', 'connectTimeoutMs', 'lingerTimeoutMs', 'queueSize'] as const) {
    const value = options[name];
    if (value !== undefined && (!Number.isInteger(value) || value <= 0)) {
      throw new VsockConfigError(`vsock option ${name}=${value} must be a positive integer`);
    }
  }
}

export class VsockDevice implements VirtioDevice {
  readonly type = VirtioDeviceType.Vsock;
  readonly name: string;
  readonly queueMaxSizes: readonly number[];
  /**
   * EVENT_IDX when asked for (options.eventIdx): the driver interrupts and is
   * interrupted only when the other side asked (used_event / avail_event),
   * not per packet. No indirect descriptors: Linux's vsock driver does not
   * need them.
   */
  readonly features: bigint;
  readonly cid: number;
  private readonly muxer: VsockMuxer;
  private listener: UnixListener | null = null;
  private eventQueue: Virtqueue | undefined;
  private context: DeviceContext | null = null;

  private constructor(options: VsockDeviceOptions) {
    this.cid = options.cid;
    this.name = `virtio-vsock cid=${options.cid}`;
    this.features = options.eventIdx ? VIRTIO_F_RING_EVENT_IDX : 0n;
    const queueSize = options.queueSize ?? VSOCK_DEFAULTS.queueSize;
    this.queueMaxSizes = [queueSize, queueSize, queueSize];
    this.muxer = new VsockMuxer({
      guestCid: options.cid,
      socketPath: options.socketPath,
      maxConnections: options.maxConnections ?? VSOCK_DEFAULTS.maxConnections,
      maxPendingClients: options.maxPendingClients ?? VSOCK_DEFAULTS.maxPendingClients,
      connectLineTimeoutMs: options.connectLineTimeoutMs ?? VSOCK_DEFAULTS.connectLineTimeoutMs,
      bufferSize: options.connectionBufferSize ?? VSOCK_DEFAULTS.connectionBufferSize,
      connectTimeoutMs: options.connectTimeoutMs ?? VSOCK_DEFAULTS.connectTimeoutMs,
      timeouts: {
        requestMs: options.requestTimeoutMs ?? VSOCK_DEFAULTS.requestTimeoutMs,
        lingerMs: options.lingerTimeoutMs ?? VSOCK_DEFAULTS.lingerTimeoutMs,
      },
      onWarning: options.onWarning,
    });
  }

  /** Validates the options and starts listening on `socketPath` (replacing a stale socket file). */
  static async create(options: VsockDeviceOptions): Promise<VsockDevice> {
    validate(options);
    const device = new VsockDevice(options);
    device.listener = await UnixListener.open(options.socketPath, (socket: net.Socket) => device.muxer.acceptHostClient(socket));
    return device;
  }

  /** Live connections (host- and guest-initiated). */
  get connectionCount(): number {
    return this.muxer.connectionCount;
  }

  /** Host clients that have not finished their CONNECT line yet. */
  get pendingHostClientCount(): number {
    return this.muxer.pendingHostClientCount;
  }

  /** The state of the live connection between these ports, or undefined (for diagnostics and tests). */
  connectionState(hostPort: number, guestPort: number): ConnectionState | undefined {
    return this.muxer.connectionState(hostPort, guestPort);
  }

  /** Bytes the live connections hold in memory, both directions (for diagnostics and tests). */
  get bufferedBytes(): number {
    return this.muxer.bufferedBytes;
  }

  /** Guest packets dropped without an answer (see VsockMuxer.droppedPackets). */
  get droppedPackets(): number {
    return this.muxer.droppedPackets;
  }

  /** struct virtio_vsock_config { le64 guest_cid }; bytes past it read as zero. */
  readConfig(offset: number, data: Uint8Array): void {
    const config = new Uint8Array(CONFIG_SIZE);
    new DataView(config.buffer).setBigUint64(0, BigInt(this.cid), true);
    for (let i = 0; i < data.byteLength; i++) {
      const at = offset + i;
      data[i] = at >= 0 && at < CONFIG_SIZE ? config[at]! : 0;
    }
  }

  writeConfig(): void {
    // The config space is read-only for the driver (spec 5.10.4).
  }

  activate(context: DeviceContext): void {
    const rx = context.queues[RX_QUEUE];
    const tx = context.queues[TX_QUEUE];
    if (rx === undefined || tx === undefined) {
      context.fail('virtio-vsock needs its rx and tx queues enabled');
      return;
    }
    this.context = context;
    this.eventQueue = context.queues[EVENT_QUEUE];
    this.muxer.activate({
      rx, tx,
      signalUsed: (queueIndex) => context.signalUsed(queueIndex),
      fail: (reason) => context.fail(reason),
    });
  }

  queueNotify(queueIndex: number): void {
    if (queueIndex === RX_QUEUE) this.muxer.rxAvailable();
    else if (queueIndex === TX_QUEUE) this.muxer.txAvailable();
    // Event queue buffers just wait until we have an event.
  }

  /**
   * Device reset: every connection is dropped and its host socket closed.
   * No TRANSPORT_RESET event follows the next activation: the driver reset
   * the device itself and has already torn down its sockets. The event is
   * for connections lost behind the guest's back (snapshot restore), see
   * sendTransportReset.
   */
  reset(): void {
    this.muxer.deactivate();
    this.context = null;
    this.eventQueue = undefined;
  }

  /**
   * Tells the guest every connection is gone (VIRTIO_VSOCK_EVENT_TRANSPORT_RESET,
   * spec 5.10.6.7): Linux then resets all its vsock sockets and re-reads the CID.
   * For a VMM that restores a guest whose host connections are gone (snapshot
   * restore); our own connections are dropped too. Returns false when the
   * driver posted no event buffer.
   */
  sendTransportReset(): boolean {
    const queue = this.eventQueue;
    const context = this.context;
    if (queue === undefined || context === null) return false;
    this.muxer.dropAllConnections();
    const chain = queue.pop();
    if (chain === null) return false;
    if (chain.writableLength < EVENT_SIZE) {
      queue.pushUsed(chain, 0);
      return false;
    }
    const event = new Uint8Array(EVENT_SIZE);
    new DataView(event.buffer).setUint32(0, EVENT_TRANSPORT_RESET, true);
    chain.write(0, event);
    queue.pushUsed(chain, EVENT_SIZE);
    if (queue.needsInterrupt()) context.signalUsed(EVENT_QUEUE);
    return true;
  }

  /** Closes every connection and the listener, and removes the socket file. */
  async close(): Promise<void> {
    this.muxer.close();
    this.listener?.close();
    this.listener = null;
  }
}

/** Creates a virtio-vsock device listening on `socketPath`. */
export function createVsockDevice(options: VsockDeviceOptions): Promise<VsockDevice> {
  return VsockDevice.create(options);
}
