// Credit-based flow control (virtio 1.x spec 5.10.6.3). Each side tells the
// other, in every packet header, how big its receive buffer for the
// connection is (buf_alloc) and how many bytes it has consumed from it so far
// (fwd_cnt, a counter that wraps at 2^32). A sender may have at most
// buf_alloc - (bytes sent - peer's fwd_cnt) bytes in flight.

/** a - b on 32-bit wrapping counters. */
function distance(a: number, b: number): number {
  return (a - b) >>> 0;
}

/**
 * Our receive window for one connection (guest -> host data). Bytes count as
 * consumed only once the host socket has actually written them, so a host
 * reader that is slow makes the guest wait instead of making us buffer.
 */
export class ReceiveCredit {
  /** Bytes forwarded to the host socket so far (our fwd_cnt). */
  private forwardedCount = 0;
  /** Bytes the guest has sent us so far. */
  private receivedCount = 0;
  /** The fwd_cnt the guest last heard from us. */
  private announcedCount = 0;

  constructor(readonly bufAlloc: number) {}

  get fwdCnt(): number {
    return this.forwardedCount;
  }

  /**
   * Accounts for `len` more bytes from the guest. False (nothing counted)
   * when they do not fit in the window we advertised: the guest ignores credit.
   */
  receive(len: number): boolean {
    if (distance(this.receivedCount, this.announcedCount) + len > this.bufAlloc) return false;
    this.receivedCount = (this.receivedCount + len) >>> 0;
    return true;
  }

  /** `len` bytes left our hands (written to the host socket). */
  forwarded(len: number): void {
    this.forwardedCount = (this.forwardedCount + len) >>> 0;
  }

  /** Every packet we send carries fwd_cnt: call after writing one. */
  announced(): void {
    this.announcedCount = this.forwardedCount;
  }

  /**
   * True when the guest believes less than half of our buffer is free and we
   * have freed space it has not heard about: it may be about to stall, so a
   * CREDIT_UPDATE is worth an rx buffer. (Linux itself never sends
   * CREDIT_REQUEST: it waits for the peer to volunteer updates.)
   */
  get updateNeeded(): boolean {
    if (this.forwardedCount === this.announcedCount) return false;
    const freeInGuestView = this.bufAlloc - distance(this.receivedCount, this.announcedCount);
    return freeInGuestView < this.bufAlloc / 2;
  }
}

/** The guest's receive window for one connection (host -> guest data). */
export class SendCredit {
  private peerBufAlloc = 0;
  private peerFwdCnt = 0;
  private sentCount = 0;
  private requested = false;

  /** Every guest packet carries its current buf_alloc and fwd_cnt. */
  update(bufAlloc: number, fwdCnt: number): void {
    this.peerBufAlloc = bufAlloc;
    this.peerFwdCnt = fwdCnt;
    if (this.available > 0) this.requested = false;
  }

  /**
   * True from our CREDIT_REQUEST (spec 5.10.6.3) until the window opens
   * again: one request per stall, as asking again would only take another rx
   * buffer for the same answer.
   */
  get updateRequested(): boolean {
    return this.requested;
  }

  /** We sent CREDIT_REQUEST. */
  requestedUpdate(): void {
    this.requested = true;
  }

  /** Bytes we may still send (0 when the guest shrank its buffer below what is in flight). */
  get available(): number {
    const free = this.peerBufAlloc - distance(this.sentCount, this.peerFwdCnt);
    return free > 0 ? free : 0;
  }

  sent(len: number): void {
    this.sentCount = (this.sentCount + len) >>> 0;
  }
}
