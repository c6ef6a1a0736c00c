// Routes vsock packets between the device's queues and the connections
// (Firecracker calls this the muxer): guest packets from the tx queue go to
// the connection their ports name, or open a new one; packets for the guest
// are written into rx buffers: RSTs first, then connections owing a control
// packet (a handshake, a SHUTDOWN, a credit update), then data round-robin
// across connections so one busy stream cannot starve the others. Host
// programs arrive through the listener and their CONNECT line.
import { trace } from '../../../trace.js';
import { describePacket } from './packet-trace.js';
import type net from 'node:net';
import type { DescriptorChain, Virtqueue } from '../queue.js';
import { type PendingHandshake, readConnectLine } from './connect-handshake.js';
import { Connection, type ConnectionOwner, type ConnectionState, type ConnectionTimeouts } from './connection.js';
import { SocketHostStream } from './host-stream.js';
import {
  HEADER_SIZE, HOST_CID, Op, type PacketHeader, VSOCK_TYPE_STREAM, decodeHeader, encodeHeader, opName,
} from './packet.js';
import { PortAllocator } from './port-allocator.js';
import { connectToHostListener, guestConnectPath } from './unix-backend.js';

export const RX_QUEUE = 0;
export const TX_QUEUE = 1;
export const EVENT_QUEUE = 2;

/** RSTs waiting for rx buffers; past this a guest that posts no rx buffers loses some. */
const MAX_QUEUED_RSTS = 4096;

export interface MuxerOptions {
  readonly guestCid: number;
  /** Guest-initiated connections to port P go to `${socketPath}_${P}`. */
  readonly socketPath: string;
  readonly maxConnections: number;
  /** Host clients still sending their CONNECT line, at most; one more closes the oldest. */
  readonly maxPendingClients: number;
  /** How long a host client has, from its accept, to send its whole CONNECT line. */
  readonly connectLineTimeoutMs: number;
  readonly bufferSize: number;
  readonly connectTimeoutMs: number;
  readonly timeouts: ConnectionTimeouts;
  /** Why a packet or client was turned away (for logs); silent by default. */
  readonly onWarning?: (message: string) => void;
}

/** What the device hands over on activation. */
export interface MuxerQueues {
  readonly rx: Virtqueue;
  readonly tx: Virtqueue;
  signalUsed(queueIndex: number): void;
  fail(reason: string): void;
}

function keyOf(hostPort: number, guestPort: number): string {
  return `${hostPort}:${guestPort}`;
}

export class VsockMuxer implements ConnectionOwner {
  private readonly connections = new Map<string, Connection>();
  /** Connections with a packet for the guest; a Set keeps insertion order, which gives round-robin. */
  private readonly rxReady = new Set<Connection>();
  /**
   * The connections of rxReady that owe a control packet (hasControlRx()),
   * in the order they came to owe it: served before the rest (fillRxBuffers).
   */
  private readonly rxControl = new Set<Connection>();
  private readonly queuedRsts: PacketHeader[] = [];
  /**
   * Host clients still sending their CONNECT line, oldest first (a Map keeps
   * insertion order). They are not connections yet: they do not count
   * against maxConnections, so idle clients cannot lock real ones out.
   */
  private readonly hostClients = new Map<net.Socket, PendingHandshake>();
  /**
   * Keys of connections that ended lately, oldest first. Linux keeps sending
   * for a socket until it has seen our RST (a CREDIT_UPDATE as its reader
   * drains, its own SHUTDOWN on close()); those packets still get an RST, but
   * are no news worth a warning. Bounded by maxConnections: even every live
   * connection closing at once is remembered.
   */
  private readonly recentlyClosed = new Set<string>();
  /** Connections that corked their socket during the current tx pass. */
  private readonly corkedConnections = new Set<Connection>();
  private readonly ports = new PortAllocator();
  private queues: MuxerQueues | null = null;
  /** Set while run() works the queues: work found meanwhile is flagged and picked up before it returns. */
  private busy = false;
  private txRequested = false;
  private rxRequested = false;
  private readonly headerBytes = new Uint8Array(HEADER_SIZE);
  /** Guest packets dropped without an answer (bad header, wrong source CID). */
  droppedPackets = 0;

  constructor(private readonly options: MuxerOptions) {}

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Host clients that have not finished their CONNECT line yet. */
  get pendingHostClientCount(): number {
    return this.hostClients.size;
  }

  /** The state of the connection between these ports, if it is live (for diagnostics and tests). */
  connectionState(hostPort: number, guestPort: number): ConnectionState | undefined {
    return this.connections.get(keyOf(hostPort, guestPort))?.state;
  }

  /** Bytes the connections hold in memory, both directions (for diagnostics and tests). */
  get bufferedBytes(): number {
    let total = 0;
    for (const connection of this.connections.values()) total += connection.bufferedBytes;
    return total;
  }

  activate(queues: MuxerQueues): void {
    this.queues = queues;
    this.txRequested = true;
    this.run();
  }

  /** Device reset: every connection dropped (host sockets destroyed), nothing sent to the guest. */
  deactivate(): void {
    this.queues = null;
    this.dropAllConnections();
    // A new driver starts with no sockets: nothing it sends is late any more.
    this.recentlyClosed.clear();
  }

  /** Every connection dropped and its host socket destroyed; nothing sent to the guest. */
  dropAllConnections(): void {
    for (const connection of this.connections.values()) connection.abort();
    this.connections.clear();
    this.rxReady.clear();
    this.rxControl.clear();
    this.queuedRsts.length = 0;
    this.ports.releaseAll();
  }

  /** VM shutdown: also closes host programs still sending their CONNECT line. */
  close(): void {
    this.deactivate();
    for (const [socket, handshake] of this.hostClients) {
      handshake.cancel();
      socket.destroy();
    }
    this.hostClients.clear();
  }

  /** The driver added tx buffers (packets from the guest). */
  txAvailable(): void {
    this.txRequested = true;
    this.run();
  }

  /** The driver added rx buffers. */
  rxAvailable(): void {
    this.requestRx();
  }

  // ---- host programs --------------------------------------------------

  /** A host program connected to the listening socket. */
  acceptHostClient(socket: net.Socket): void {
    // Errors after the handshake hand-off belong to the connection; this
    // listener only keeps a late error from crashing the process.
    socket.on('error', () => {});
    if (this.connections.size >= this.options.maxConnections) {
      this.warn(`refusing a host client: ${this.options.maxConnections} connections are live`);
      socket.destroy();
      return;
    }
    if (this.hostClients.size >= this.options.maxPendingClients) {
      // The oldest is the likeliest to be idle (a working client sends its
      // line at once), and refusing the newest instead would let idle
      // clients lock every new one out until they time out.
      const [oldest, handshake] = this.hostClients.entries().next().value as [net.Socket, PendingHandshake];
      this.hostClients.delete(oldest);
      handshake.cancel();
      oldest.destroy();
      this.warn(`closing the oldest host client still without a CONNECT line: ${this.options.maxPendingClients} are waiting`);
    }
    const handshake = readConnectLine(socket, this.options.connectLineTimeoutMs, (result) => {
      this.hostClients.delete(socket);
      if ('reason' in result) {
        this.warn(`closing a host client: ${result.reason}`);
        socket.destroy();
        return;
      }
      this.connectFromHost(socket, result.port, result.rest);
    });
    this.hostClients.set(socket, handshake);
  }

  private connectFromHost(socket: net.Socket, guestPort: number, initial: Buffer): void {
    if (this.queues === null) {
      this.warn(`closing a host client for guest port ${guestPort}: the guest's vsock driver is not running`);
      socket.destroy();
      return;
    }
    if (this.connections.size >= this.options.maxConnections) {
      this.warn(`refusing a connection to guest port ${guestPort}: ${this.options.maxConnections} connections are live`);
      socket.destroy();
      return;
    }
    let hostPort = this.ports.allocate();
    while (this.connections.has(keyOf(hostPort, guestPort))) {
      // A guest-initiated connection happens to use this port pair.
      const taken = hostPort;
      hostPort = this.ports.allocate();
      this.ports.release(taken);
    }
    const connection = Connection.fromHost(this.connectionParams(hostPort, guestPort), new SocketHostStream(socket), initial);
    this.connections.set(keyOf(hostPort, guestPort), connection);
    this.recentlyClosed.delete(keyOf(hostPort, guestPort));
    this.wantsRx(connection); // its REQUEST
  }

  // ---- guest packets (tx queue) ---------------------------------------

  /**
   * Works the queues until no work is flagged: tx first (guest packets may
   * owe answers), then rx. Everything that finds work (a kick, a host
   * socket event, a timer, a connection mid-pass) flags it and calls run(),
   * which returns at once when a pass is already under way.
   */
  private run(): void {
    const queues = this.queues;
    if (queues === null || this.busy) return;
    this.busy = true;
    try {
      while (this.txRequested || this.rxRequested) {
        if (this.txRequested) {
          this.txRequested = false;
          this.drainTx(queues);
        }
        if (this.rxRequested) {
          this.rxRequested = false;
          this.fillRx(queues);
        }
      }
    } catch (error) {
      // A ring or chain the driver broke (VirtqueueError): nothing more is
      // trustworthy until the driver resets the device.
      this.deactivate();
      queues.fail(`virtio-vsock: ${(error as Error).message}`);
    } finally {
      this.busy = false;
      this.uncorkAll();
    }
  }

  private requestRx(): void {
    this.rxRequested = true;
    this.run();
  }

  /** Handles the guest's packets, at most a queue's worth per pass so host sockets and timers get their turn. */
  private drainTx(queues: MuxerQueues): void {
    let handled = 0;
    for (;;) {
      if (handled >= queues.tx.size) {
        setImmediate(() => {
          if (this.queues === queues) this.txAvailable();
        });
        break;
      }
      const chain = queues.tx.pop();
      if (chain === null) break;
      this.handleGuestPacket(chain);
      queues.tx.pushUsed(chain, 0);
      handled += 1;
    }
    // Packets of this pass leave each socket in one writev().
    this.uncorkAll();
    if (handled > 0 && queues.tx.needsInterrupt()) queues.signalUsed(TX_QUEUE);
  }

  private handleGuestPacket(chain: DescriptorChain): void {
    if (chain.readableLength < HEADER_SIZE) {
      this.drop(`a tx buffer of ${chain.readableLength} bytes is shorter than a packet header`);
      return;
    }
    chain.read(0, this.headerBytes);
    const header = decodeHeader(this.headerBytes);
    if (trace.vsock) trace.line('vsock', describePacket('tx', header));
    if (header.srcCid !== this.options.guestCid) {
      // Not from a socket of this guest: an answer could reach no one (spec 5.10.6.3 addressing).
      this.drop(`a packet from CID ${header.srcCid}, not the guest's CID ${this.options.guestCid}`);
      return;
    }
    if (header.dstCid !== HOST_CID || header.type !== VSOCK_TYPE_STREAM) {
      // Another VM, or SEQPACKET which we did not offer: an RST makes the guest's connect() fail fast.
      this.replyRst(header);
      return;
    }
    const key = keyOf(header.dstPort, header.srcPort);
    const connection = this.connections.get(key);
    if (connection === undefined) {
      if (header.op === Op.Request) this.connectFromGuest(header);
      else this.replyRst(header, { quiet: this.recentlyClosed.has(key) });
      return;
    }
    if (header.op === Op.Rw && header.len > chain.readableLength - HEADER_SIZE) {
      this.warn(`guest RW packet claims ${header.len} bytes but carries ${chain.readableLength - HEADER_SIZE}`);
      connection.protocolError();
      return;
    }
    connection.onGuestPacket(header, chain);
  }

  private connectFromGuest(request: PacketHeader): void {
    if (this.connections.size >= this.options.maxConnections) {
      this.warn(`refusing guest connection to port ${request.dstPort}: ${this.options.maxConnections} connections are live`);
      this.replyRst(request);
      return;
    }
    const key = keyOf(request.dstPort, request.srcPort);
    const path = guestConnectPath(this.options.socketPath, request.dstPort);
    const connection = Connection.fromGuest(this.connectionParams(request.dstPort, request.srcPort), request);
    this.connections.set(key, connection);
    this.recentlyClosed.delete(key);
    connection.pendingConnect = connectToHostListener(path, this.options.connectTimeoutMs, (result) => {
      if (result instanceof Error) {
        this.warn(`guest connection to port ${request.dstPort} refused: ${result.message}`);
        connection.hostConnectFailed();
      } else {
        connection.hostConnected(new SocketHostStream(result));
      }
    });
  }

  corked(connection: Connection): void {
    this.corkedConnections.add(connection);
  }

  private uncorkAll(): void {
    for (const connection of this.corkedConnections) connection.uncork();
    this.corkedConnections.clear();
  }

  /** Answers a packet no connection takes with an RST; `quiet` for late packets of a connection that just ended. */
  private replyRst(to: PacketHeader, { quiet = false } = {}): void {
    if (to.op === Op.Rst) return; // Never answer an RST with an RST.
    if (!quiet) this.warn(`answering guest ${opName(to.op)} ${to.srcPort} -> ${to.dstCid}:${to.dstPort} with RST`);
    this.queueRst({
      srcCid: to.dstCid, dstCid: to.srcCid, srcPort: to.dstPort, dstPort: to.srcPort,
      len: 0, type: to.type, op: Op.Rst, flags: 0, bufAlloc: 0, fwdCnt: 0,
    });
  }

  private queueRst(header: PacketHeader): void {
    if (this.queuedRsts.length >= MAX_QUEUED_RSTS) return;
    this.queuedRsts.push(header);
    this.requestRx();
  }

  // ---- packets for the guest (rx queue) -------------------------------

  wantsRx(connection: Connection): void {
    this.rxReady.add(connection);
    if (connection.hasControlRx()) this.rxControl.add(connection);
    this.requestRx();
  }

  closed(connection: Connection, sendRst: boolean): void {
    const key = keyOf(connection.hostPort, connection.guestPort);
    if (this.connections.get(key) === connection) {
      this.connections.delete(key);
      this.rememberClosed(key);
    }
    this.rxReady.delete(connection);
    this.rxControl.delete(connection);
    if (connection.hostInitiated) this.ports.release(connection.hostPort);
    if (sendRst) this.queueRst(connection.rstHeader());
  }

  /** Fills rx buffers: RSTs first, then connections owing a control packet, then connections in turn. */
  private fillRx(queues: MuxerQueues): void {
    const used = this.fillRxBuffers(queues.rx);
    if (used > 0 && queues.rx.needsInterrupt()) queues.signalUsed(RX_QUEUE);
  }

  private fillRxBuffers(rx: Virtqueue): number {
    let used = 0;
    while (this.queuedRsts.length > 0 || this.rxReady.size > 0) {
      const chain = rx.pop();
      if (chain === null) break;
      if (chain.writableLength < HEADER_SIZE) {
        // Too small for any packet: give it back empty (Linux drops it).
        rx.pushUsed(chain, 0);
        used += 1;
        continue;
      }
      const rst = this.queuedRsts.shift();
      if (rst !== undefined) {
        encodeHeader(rst, this.headerBytes);
        chain.write(0, this.headerBytes);
        if (trace.vsock) trace.line('vsock', describePacket('rx', rst));
        rx.pushUsed(chain, HEADER_SIZE);
        used += 1;
        continue;
      }
      const connection = this.nextRxConnection();
      const written = connection.fillRx(chain);
      this.rxReady.delete(connection);
      this.rxControl.delete(connection);
      const more = connection.hasRxWork();
      if (more) {
        // To the back of the line (of both lines, when it owes another control packet).
        this.rxReady.add(connection);
        if (connection.hasControlRx()) this.rxControl.add(connection);
      }
      if (written === 0) {
        rx.undoPop();
        // Still owing a packet it could not write: the buffer is too small for data. Wait for others.
        if (more) break;
        continue;
      }
      rx.pushUsed(chain, written);
      used += 1;
    }
    return used;
  }

  /**
   * The connection that fills the next rx buffer, after the RSTs: the first
   * that owes a control packet, else the next in the data round. A REQUEST or
   * RESPONSE has a deadline (Linux gives connect() 2 s), a CREDIT_UPDATE is
   * what a guest writer out of credit waits for, and a SHUTDOWN (owed only
   * after the connection's last byte) is what its reader waits for; behind a
   * round of data from every busy connection, with a guest slow to give rx
   * buffers back, handshakes came too late. Each is one header, owed at most
   * once until sent and again only after a guest packet or a host event (a
   * new connection, an end), so serving them first cannot starve data, and
   * their latency does not grow with the data other connections move. The
   * connection writes its own next packet (Connection.fillRx), which for a
   * CREDIT_UPDATE may be an RW carrying the same fwd_cnt; then it goes to
   * the back of the round, so that is its data turn taken early, not an
   * extra one.
   */
  private nextRxConnection(): Connection {
    while (this.rxControl.size > 0) {
      const connection = this.rxControl.values().next().value as Connection;
      if (connection.hasControlRx()) return connection;
      // It no longer owes one (a SHUTDOWN withdrawn by the guest's SHUTDOWN RCV): its data waits its turn.
      this.rxControl.delete(connection);
    }
    return this.rxReady.values().next().value as Connection;
  }

  // ---- helpers ---------------------------------------------------------

  private rememberClosed(key: string): void {
    this.recentlyClosed.add(key);
    if (this.recentlyClosed.size > this.options.maxConnections) {
      this.recentlyClosed.delete(this.recentlyClosed.values().next().value as string);
    }
  }

  private connectionParams(hostPort: number, guestPort: number) {
    return {
      owner: this, guestCid: this.options.guestCid, hostPort, guestPort,
      bufferSize: this.options.bufferSize, timeouts: this.options.timeouts,
    };
  }

  private drop(reason: string): void {
    this.droppedPackets += 1;
    this.warn(`dropping guest packet: ${reason}`);
  }

  private warn(message: string): void {
    this.options.onWarning?.(message);
  }
}
