// The control packets a connection owes the guest, and the order they go out
// in. Firecracker keeps the same idea as a bit set (PendingRxSet in its
// csm/mod.rs) that recv_pkt() answers in a fixed priority. Two packets are
// not members here: RST, because a connection's RST is queued by the muxer,
// whose queue outlives the connection; and data (RW, or CREDIT_REQUEST when
// the guest's window is shut), because whether it can go depends on the bytes
// held and the guest's credit at the moment an rx buffer is filled. The
// order is within one connection; a connection that owes any member is
// served before other connections' data (muxer.ts nextRxConnection).

import { Op } from './packet.js';

/**
 * The packets a connection can owe, in the order they are sent. Data goes
 * between RESPONSE and SHUTDOWN: the handshake must precede any data,
 * SHUTDOWN SEND must follow the last byte, and a CREDIT_UPDATE is only worth
 * an rx buffer when no other packet carries our fwd_cnt.
 */
const SEND_ORDER = [Op.Request, Op.Response, Op.Shutdown, Op.CreditUpdate] as const;
export type OwedOp = (typeof SEND_ORDER)[number];

/** A set holds op SEND_ORDER[i] as bit i, so its lowest bit is the packet to send first. */
function bitOf(op: OwedOp): number {
  return 1 << SEND_ORDER.indexOf(op);
}

/** The bits of the packets that go before any data. */
const BEFORE_DATA = bitOf(Op.Shutdown) - 1;

function firstOf(bits: number): OwedOp | undefined {
  return bits === 0 ? undefined : SEND_ORDER[31 - Math.clz32(bits & -bits)];
}

export class PendingPackets {
  private bits = 0;
  /** The SHUTDOWN flags owed; non-zero exactly while SHUTDOWN is. */
  private flags = 0;

  get isEmpty(): boolean {
    return this.bits === 0;
  }

  has(op: OwedOp): boolean {
    return (this.bits & bitOf(op)) !== 0;
  }

  /** The flags of the owed SHUTDOWN (0: none owed). */
  get shutdownFlags(): number {
    return this.flags;
  }

  add(op: Exclude<OwedOp, typeof Op.Shutdown>): void {
    this.bits |= bitOf(op);
  }

  /** Owes a SHUTDOWN with `flags` (ORed into any already owed). */
  addShutdown(flags: number): void {
    if (flags === 0) return;
    this.flags |= flags;
    this.bits |= bitOf(Op.Shutdown);
  }

  /** Takes `flags` back from the owed SHUTDOWN, e.g. SEND once the guest said it will not read again. */
  withdrawShutdown(flags: number): void {
    this.flags &= ~flags;
    if (this.flags === 0) this.bits &= ~bitOf(Op.Shutdown);
  }

  /** The packet went out (or is needed no more). */
  remove(op: OwedOp): void {
    if (op === Op.Shutdown) this.flags = 0;
    this.bits &= ~bitOf(op);
  }

  /** The owed packet to send next, if any. */
  first(): OwedOp | undefined {
    return firstOf(this.bits);
  }

  /** The owed packet to send next if it must go before any data (REQUEST, RESPONSE). */
  firstBeforeData(): OwedOp | undefined {
    return firstOf(this.bits & BEFORE_DATA);
  }
}
