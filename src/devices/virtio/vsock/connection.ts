// One vsock stream between a guest socket and a host stream (a Unix socket in
// production): its state machine (virtio 1.x spec 5.10.6.4-5.10.6.6), credit
// accounting in both directions, and the bridge to the host stream. The muxer
// routes packets here and asks for packets to put in rx buffers; this file
// never touches queues or sockets.
//
//   host-initiated:  requesting --RESPONSE--> established
//   guest-initiated: connecting --host connect ok--> established (RESPONSE owed)
//   established --SHUTDOWN both sent--> closing (linger for RST, begun when it became owed)
//   any --RST / both directions shut / error / timeout--> closed
//
// Within established each direction finishes on its own (half-close): the
// guest's SHUTDOWN flags (guestShut), ours (shutSent) and the host's end
// (hostEnded) say which are done. Packets owed to the guest are a
// PendingPackets set (pending-packets.ts).
//
// The linger bounds the end: it starts when both directions are done and our
// SHUTDOWN both becomes owed, not when an rx buffer takes it, so a guest that
// posts no rx buffers cannot hold a finished connection (oweShutdown).
import { trace } from '../../../trace.js';
import { describePacket } from './packet-trace.js';
import { ByteQueue } from './byte-queue.js';
import type { HostStream } from './host-stream.js';
import { ScatterWriter, payloadPool } from './copy.js';
import type { PendingConnect } from './unix-backend.js';
import { ReceiveCredit, SendCredit } from './credit.js';
import { type OwedOp, PendingPackets } from './pending-packets.js';
import {
  HEADER_SIZE, HOST_CID, Op, type PacketHeader, SHUTDOWN_BOTH, SHUTDOWN_RCV, SHUTDOWN_SEND,
  VSOCK_TYPE_STREAM, encodeHeader,
} from './packet.js';

export interface ConnectionTimeouts {
  /** Host-initiated: how long the guest has to answer our REQUEST. */
  readonly requestMs: number;
  /**
   * From when both directions are done (our SHUTDOWN both owed): how long the
   * guest has to take that SHUTDOWN and answer RST. Also bounds a final flush to the host.
   */
  readonly lingerMs: number;
}

/** What a connection needs from its muxer. */
export interface ConnectionOwner {
  /** The connection has a packet for the guest: schedule an rx pass. */
  wantsRx(connection: Connection): void;
  /** The connection is over; with `sendRst` the owner tells the guest with an RST. */
  closed(connection: Connection, sendRst: boolean): void;
  /** The connection corked its host stream for this tx pass: call uncork() when the pass ends. */
  corked(connection: Connection): void;
}

/** Where a guest packet's payload comes from (a tx DescriptorChain). */
export interface PacketSource {
  /** Live views of guest memory holding readable bytes [offset, offset + length). */
  readableViews(offset: number, length: number): Uint8Array[];
}

/** Where a packet for the guest goes (an rx DescriptorChain). */
export interface PacketSink {
  readonly writableLength: number;
  write(offset: number, source: Uint8Array): number;
  /** Live views of guest memory for writable bytes [offset, offset + length). */
  writableViews(offset: number, length: number): Uint8Array[];
}

/**
 * Where a connection is in its life (the diagram above), with what it holds
 * only there. The host stream and the half-close flags are not in it: they
 * span stages. A closed connection may still be flushing its host stream,
 * and whether the guest had stopped sending decides, in any stage, whether
 * its RST ends the host stream gracefully.
 */
type Stage =
  /** Host-initiated: REQUEST owed or sent; the guest must answer before `deadline`. */
  | { readonly name: 'requesting'; readonly deadline: NodeJS.Timeout }
  /** Guest-initiated: tsvmm is connecting to the host listener (`attempt`, once the muxer started it). */
  | { readonly name: 'connecting'; attempt: PendingConnect | null }
  /**
   * Either direction may be open or finished. Once both are done our SHUTDOWN
   * both is owed and `linger` runs (oweShutdown): the guest must take it and
   * answer RST before then.
   */
  | { readonly name: 'established'; readonly linger?: NodeJS.Timeout }
  /** We sent SHUTDOWN both: the guest's RST is due before `deadline`, the linger begun when it became owed. */
  | { readonly name: 'closing'; readonly deadline: NodeJS.Timeout }
  | { readonly name: 'closed' };

export type ConnectionState = Stage['name'];

const ESTABLISHED: Stage = { name: 'established' };
const CLOSED: Stage = { name: 'closed' };

/** The timer a stage holds, if any. */
function deadlineOf(stage: Stage): NodeJS.Timeout | undefined {
  switch (stage.name) {
    case 'requesting':
    case 'closing':
      return stage.deadline;
    case 'established':
      return stage.linger;
    default:
      return undefined;
  }
}

export interface ConnectionParams {
  readonly owner: ConnectionOwner;
  readonly guestCid: number;
  readonly hostPort: number;
  readonly guestPort: number;
  /** Our receive buffer (buf_alloc) and the most host data we hold for the guest. */
  readonly bufferSize: number;
  readonly timeouts: ConnectionTimeouts;
}

export class Connection {
  readonly hostPort: number;
  readonly guestPort: number;
  private stage: Stage;
  private readonly owner: ConnectionOwner;
  private readonly guestCid: number;
  private readonly timeouts: ConnectionTimeouts;
  private readonly maxPending: number;
  /** Attached while requesting, once connected while connecting; kept when closed (a flush may still run). */
  private host: HostStream | null = null;
  /** After a graceful end of the host stream when closed: destroys it if it has not closed within lingerMs. */
  private flushGuard: NodeJS.Timeout | undefined;

  private readonly receiveCredit: ReceiveCredit;
  private readonly sendCredit = new SendCredit();
  /** Host bytes waiting for guest rx buffers or credit. */
  private readonly pending = new ByteQueue();
  /** Control packets owed to the guest; fillRx sends them in the set's order. */
  private readonly owed = new PendingPackets();

  // Half-close: which directions are done (from established on).
  /** The host program ended its stream: it will send no more. */
  private hostEnded = false;
  /** SHUTDOWN flags the guest sent (ORed: promises cannot be taken back). */
  private guestShut = 0;
  /** SHUTDOWN flags we told the guest. */
  private shutSent = 0;

  // What the connection last asked of its host stream.
  /** Reading resumed (updateReading decides). */
  private reading = false;
  /** Corked for the current tx pass (guestData corks, uncork() ends it). */
  private writesCorked = false;

  private static readonly header = new Uint8Array(HEADER_SIZE);

  /** A host-initiated connection starts requesting, a guest-initiated one connecting. */
  private constructor(params: ConnectionParams, readonly hostInitiated: boolean) {
    this.owner = params.owner;
    this.guestCid = params.guestCid;
    this.hostPort = params.hostPort;
    this.guestPort = params.guestPort;
    this.timeouts = params.timeouts;
    this.maxPending = params.bufferSize;
    this.receiveCredit = new ReceiveCredit(params.bufferSize);
    if (hostInitiated) {
      const deadline = this.deadline(params.timeouts.requestMs, () => this.terminate({ rst: true, flush: false }));
      this.stage = { name: 'requesting', deadline };
    } else {
      this.stage = { name: 'connecting', attempt: null };
    }
  }

  /**
   * A host program sent "CONNECT <guestPort>": a REQUEST for the guest is
   * owed (hasRxWork() is true). `initial` is what the program wrote after its
   * CONNECT line.
   */
  static fromHost(params: ConnectionParams, host: HostStream, initial: Buffer): Connection {
    const c = new Connection(params, true);
    c.attach(host);
    c.pending.push(initial);
    c.owed.add(Op.Request);
    return c;
  }

  /**
   * The guest sent a REQUEST. The caller starts connecting to the host
   * listener and reports the outcome with hostConnected() or hostConnectFailed().
   */
  static fromGuest(params: ConnectionParams, request: PacketHeader): Connection {
    const c = new Connection(params, false);
    c.sendCredit.update(request.bufAlloc, request.fwdCnt);
    return c;
  }

  /** Lets an RST from the guest abandon the connect attempt. */
  set pendingConnect(pending: PendingConnect) {
    if (this.stage.name === 'connecting') this.stage.attempt = pending;
  }

  get state(): ConnectionState {
    return this.stage.name;
  }

  /**
   * Bytes this connection holds in memory: host data waiting for the guest,
   * what the host stream still buffers for reading, and guest data not yet
   * written to it.
   */
  get bufferedBytes(): number {
    return this.pending.length + (this.host?.bufferedBytes ?? 0);
  }

  hostConnected(host: HostStream): void {
    if (this.stage.name !== 'connecting') {
      host.destroy();
      return;
    }
    this.stage.attempt = null; // It has settled: nothing to cancel.
    this.attach(host);
    this.enter(ESTABLISHED);
    this.owed.add(Op.Response);
    this.updateReading();
    this.owner.wantsRx(this);
  }

  hostConnectFailed(): void {
    if (this.stage.name === 'connecting') this.terminate({ rst: true, flush: false });
  }

  /** Drops the connection without telling anyone (device reset, VM exit). */
  abort(): void {
    if (this.stage.name === 'closed') return;
    this.enter(CLOSED);
    this.pending.clear();
    this.host?.destroy();
  }

  // ---- guest -> host --------------------------------------------------

  /** A packet from the guest for this connection. RW payload is read from `source` after the header. */
  onGuestPacket(header: PacketHeader, source: PacketSource): void {
    if (this.stage.name === 'closed') return;
    // Every packet carries the guest's current credit (spec 5.10.6.3).
    this.sendCredit.update(header.bufAlloc, header.fwdCnt);
    if (header.op === Op.Rst) {
      this.terminate({ rst: false, flush: (this.guestShut & SHUTDOWN_SEND) !== 0 });
      return;
    }
    switch (this.stage.name) {
      case 'requesting':
        if (header.op === Op.Response) this.guestAccepted();
        else this.protocolError();
        return;
      case 'connecting':
        this.protocolError();
        return;
      case 'closing':
        return; // Only the guest's RST matters now.
      case 'established':
        break;
    }
    switch (header.op) {
      case Op.Rw:
        this.guestData(header.len, source);
        break;
      case Op.CreditUpdate:
        break; // The credit itself was taken above.
      case Op.CreditRequest:
        this.owed.add(Op.CreditUpdate);
        break;
      case Op.Shutdown:
        this.guestShutdown(header.flags & SHUTDOWN_BOTH);
        break;
      default:
        this.protocolError();
        return;
    }
    if (this.stage.name !== 'established') return;
    this.updateReading();
    if (this.hasRxWork()) this.owner.wantsRx(this);
  }

  /** The guest broke the protocol on this connection: reset it (RST to the guest, host stream destroyed). */
  protocolError(): void {
    this.terminate({ rst: true, flush: false });
  }

  private guestAccepted(): void {
    this.enter(ESTABLISHED);
    // The host program learns its port, then the stream starts (Firecracker's contract).
    this.host?.write(`OK ${this.hostPort}\n`);
    this.updateReading();
    this.finishHostToGuestIfDrained();
    if (this.hasRxWork()) this.owner.wantsRx(this);
  }

  private guestData(len: number, source: PacketSource): void {
    if (len === 0) return;
    if ((this.guestShut & SHUTDOWN_SEND) !== 0 || !this.receiveCredit.receive(len)) {
      // Data after SHUTDOWN SEND, or more than the credit we gave: reset, as Firecracker does.
      this.protocolError();
      return;
    }
    // One copy out of guest memory: the guest may reuse its buffer as soon as
    // we mark it used, long before the host write completes.
    const data = payloadPool.gather(source.readableViews(HEADER_SIZE, len), len);
    if (!this.writesCorked) {
      // Packets of one tx pass leave in one writev() (the muxer uncorks at the end of the pass).
      this.writesCorked = true;
      this.host!.cork();
      this.owner.corked(this);
    }
    this.host!.write(data, (error) => {
      if (!error) payloadPool.release(data);
      if (error || this.stage.name === 'closed') return;
      this.receiveCredit.forwarded(len);
      if (this.receiveCredit.updateNeeded && !this.owed.has(Op.CreditUpdate)) {
        this.owed.add(Op.CreditUpdate);
        this.owner.wantsRx(this);
      }
    });
  }

  /** Ends the batch guestData started: the host stream sends what this tx pass gave it. */
  uncork(): void {
    if (!this.writesCorked) return;
    this.writesCorked = false;
    this.host?.uncork();
  }

  private guestShutdown(flags: number): void {
    const added = flags & ~this.guestShut;
    this.guestShut |= flags;
    if ((added & SHUTDOWN_RCV) !== 0) {
      // The guest will not read again: drop what we hold and drain the host side into the void.
      this.pending.clear();
      this.owed.withdrawShutdown(SHUTDOWN_SEND);
    }
    if ((added & SHUTDOWN_SEND) !== 0 && !this.host!.destroyed) this.host!.end();
    const hostToGuestDone = (this.shutSent & SHUTDOWN_SEND) !== 0 || (this.guestShut & SHUTDOWN_RCV) !== 0;
    if ((this.guestShut & SHUTDOWN_SEND) === 0) return;
    if (hostToGuestDone) {
      // Both directions are shut: a full close, answered with RST (what Linux does too).
      this.terminate({ rst: true, flush: true });
    } else if ((this.owed.shutdownFlags & SHUTDOWN_SEND) !== 0) {
      // Our SHUTDOWN SEND is owed but not sent yet (no rx buffer was free):
      // on the wire the guest finished first, so it goes out as SHUTDOWN
      // both, as finishHostToGuestIfDrained would have made it, and the
      // linger starts now. Left as SEND, it would leave the connection
      // established with both directions done and no timer.
      this.oweShutdown(SHUTDOWN_RCV);
    }
  }

  // ---- host -> guest --------------------------------------------------

  private attach(host: HostStream): void {
    this.host = host;
    host.pause();
    this.reading = false;
    host.listen({
      data: (chunk) => this.hostData(chunk),
      end: () => this.hostEnd(),
      error: () => this.terminate({ rst: true, flush: false }),
      close: () => this.hostClosed(),
    });
  }

  private hostClosed(): void {
    // A graceful end that finished needs no guard any more.
    clearTimeout(this.flushGuard);
    // With half-open sockets a clean close follows the host's end and ours:
    // what we still hold for the guest goes out first. Without the host's
    // end it is an abort.
    if (!this.hostEnded) this.terminate({ rst: true, flush: false });
  }

  private hostData(chunk: Buffer): void {
    // Nobody will read it: after our SHUTDOWN, after the end, or after the guest's SHUTDOWN RCV.
    if (this.stage.name === 'closing' || this.stage.name === 'closed' || (this.guestShut & SHUTDOWN_RCV) !== 0) return;
    this.pending.push(chunk);
    this.updateReading();
    this.owner.wantsRx(this);
  }

  private hostEnd(): void {
    this.hostEnded = true;
    this.updateReading();
    this.finishHostToGuestIfDrained();
  }

  /** Once the host ended and the guest has every byte, tell it: SHUTDOWN SEND (both if the guest finished first). */
  private finishHostToGuestIfDrained(): void {
    if (!this.hostEnded || this.pending.length > 0 || this.shutSent !== 0 || this.owed.has(Op.Shutdown)) return;
    if (this.stage.name !== 'established') return;
    if ((this.guestShut & SHUTDOWN_RCV) !== 0) return; // It does not care any more.
    this.oweShutdown((this.guestShut & SHUTDOWN_SEND) !== 0 ? SHUTDOWN_BOTH : SHUTDOWN_SEND);
    this.owner.wantsRx(this);
  }

  /**
   * Owes the guest SHUTDOWN `flags` (ORed into one already owed). When that
   * makes it SHUTDOWN both, both directions are done and the linger starts
   * now, not when an rx buffer takes the SHUTDOWN: a guest that posts none
   * would otherwise hold the connection, its slot at the muxer and its host
   * stream, forever. If the linger ends first, the SHUTDOWN is dropped and the
   * connection ends as after any linger (RST queued at the muxer, the host
   * stream flushed). A guest that takes it at once sees no difference.
   */
  private oweShutdown(flags: number): void {
    this.owed.addShutdown(flags);
    const stage = this.stage;
    if (this.owed.shutdownFlags !== SHUTDOWN_BOTH || stage.name !== 'established' || stage.linger !== undefined) return;
    this.enter({ name: 'established', linger: this.lingerDeadline() });
  }

  /**
   * Reads the host stream only while the guest has credit for what we hold
   * and our own buffer is not full; otherwise pauses it, so a slow guest
   * reader slows the host writer instead of growing our memory.
   */
  private updateReading(): void {
    const host = this.host;
    if (host === null) return;
    let want = this.stage.name === 'established' && !this.hostEnded;
    if (want && (this.guestShut & SHUTDOWN_RCV) === 0) {
      want = this.pending.length < Math.min(this.sendCredit.available, this.maxPending);
    }
    if (want === this.reading) return;
    this.reading = want;
    if (want) host.resume();
    else host.pause();
  }

  // ---- packets for the guest ------------------------------------------

  /** True when fillRx has something to send. */
  hasRxWork(): boolean {
    if (this.stage.name === 'closed') return false;
    return !this.owed.isEmpty || this.receiveCredit.updateNeeded ||
      (this.stage.name === 'established' && this.pending.length > 0 &&
        (this.sendCredit.available > 0 || !this.sendCredit.updateRequested));
  }

  /**
   * True when the connection owes the guest a control packet: REQUEST,
   * RESPONSE, SHUTDOWN or a CREDIT_UPDATE (owed, or due as credit.ts says).
   * The muxer serves such a connection before those that only have data
   * (muxer.ts nextRxConnection). Data and CREDIT_REQUEST wait their turn.
   */
  hasControlRx(): boolean {
    if (this.stage.name === 'closed') return false;
    return !this.owed.isEmpty || this.receiveCredit.updateNeeded;
  }

  /** Writes the next packet for the guest into `sink`; returns its length (0: nothing to send). */
  fillRx(sink: PacketSink): number {
    if (this.stage.name === 'closed') return 0;
    const handshake = this.owed.firstBeforeData();
    if (handshake !== undefined) return this.writeOwed(sink, handshake);
    if (this.stage.name === 'established' && this.pending.length > 0) {
      const credit = this.sendCredit.available;
      const room = sink.writableLength - HEADER_SIZE;
      if (credit > 0 && room > 0) return this.writeData(sink, Math.min(credit, room, this.pending.length));
      if (credit === 0 && !this.sendCredit.updateRequested) {
        // Out of guest credit with data waiting: ask (spec 5.10.6.3).
        this.sendCredit.requestedUpdate();
        return this.writeHeader(sink, Op.CreditRequest);
      }
    }
    const next = this.owed.first();
    if (next !== undefined) return this.writeOwed(sink, next);
    // Due without being owed: the guest's view of our buffer ran low while we freed space (credit.ts).
    if (this.receiveCredit.updateNeeded) return this.writeHeader(sink, Op.CreditUpdate);
    return 0;
  }

  /** The RST the muxer sends for this connection after it closed. */
  rstHeader(): PacketHeader {
    return this.header(Op.Rst, 0, 0);
  }

  /** Writes a control packet the connection owed; after SHUTDOWN both it is closing. */
  private writeOwed(sink: PacketSink, op: OwedOp): number {
    if (op !== Op.Shutdown) {
      this.owed.remove(op);
      return this.writeHeader(sink, op);
    }
    const flags = this.owed.shutdownFlags;
    this.owed.remove(op);
    this.shutSent |= flags;
    if (flags === SHUTDOWN_BOTH) this.enterClosing();
    return this.writeHeader(sink, op, 0, flags);
  }

  private writeData(sink: PacketSink, len: number): number {
    this.writeHeader(sink, Op.Rw, len);
    const writer = new ScatterWriter(sink.writableViews(HEADER_SIZE, len));
    this.pending.take(len, (piece) => writer.write(piece));
    this.sendCredit.sent(len);
    this.updateReading();
    this.finishHostToGuestIfDrained();
    return HEADER_SIZE + len;
  }

  private writeHeader(sink: PacketSink, op: number, len = 0, flags = 0): number {
    const header = this.header(op, len, flags);
    if (trace.vsock) trace.line('vsock', describePacket('rx', header));
    encodeHeader(header, Connection.header);
    sink.write(0, Connection.header);
    // The header carried our fwd_cnt: the guest is now up to date.
    this.receiveCredit.announced();
    this.owed.remove(Op.CreditUpdate);
    return HEADER_SIZE;
  }

  private header(op: number, len: number, flags: number): PacketHeader {
    return {
      srcCid: HOST_CID, dstCid: this.guestCid, srcPort: this.hostPort, dstPort: this.guestPort,
      len, type: VSOCK_TYPE_STREAM, op, flags,
      bufAlloc: this.receiveCredit.bufAlloc, fwdCnt: this.receiveCredit.fwdCnt,
    };
  }

  // ---- ending -----------------------------------------------------------

  /** We told the guest both directions are done: it has until the linger ends to answer RST. */
  private enterClosing(): void {
    const stage = this.stage;
    // The linger began when the SHUTDOWN became owed (oweShutdown); it is not restarted.
    const deadline = stage.name === 'established' && stage.linger !== undefined ? stage.linger : this.lingerDeadline();
    this.enter({ name: 'closing', deadline });
    this.pending.clear();
  }

  /** The linger: when it ends without the guest's RST, we send one. */
  private lingerDeadline(): NodeJS.Timeout {
    return this.deadline(this.timeouts.lingerMs, () => this.terminate({ rst: true, flush: true }));
  }

  /**
   * Ends the connection at once. `flush` lets the host stream send what it
   * still holds (a graceful end(), bounded by lingerMs); otherwise it is destroyed.
   */
  private terminate(options: { rst: boolean; flush: boolean }): void {
    if (this.stage.name === 'closed') return;
    this.enter(CLOSED);
    this.pending.clear();
    const host = this.host;
    if (host !== null) {
      if (options.flush && !host.destroyed) {
        host.end();
        this.flushGuard = this.deadline(this.timeouts.lingerMs, () => host.destroy());
      } else {
        host.destroy();
      }
    }
    this.owner.closed(this, options.rst);
  }

  /**
   * Moves to `next`, releasing what the stage it leaves held: its deadline
   * (unless `next` takes it over: the linger, from established to closing)
   * or its connect attempt.
   */
  private enter(next: Stage): void {
    const left = this.stage;
    const held = deadlineOf(left);
    if (held !== undefined && held !== deadlineOf(next)) clearTimeout(held);
    if (left.name === 'connecting') left.attempt?.cancel();
    this.stage = next;
  }

  /** Runs `onExpiry` after `ms` unless cleared; it does not keep a VM that is otherwise done alive. */
  private deadline(ms: number, onExpiry: () => void): NodeJS.Timeout {
    const timer = setTimeout(onExpiry, ms);
    timer.unref();
    return timer;
  }
}
