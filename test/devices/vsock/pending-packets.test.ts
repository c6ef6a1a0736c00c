// The set of control packets a connection owes the guest (pending-packets.ts):
// membership, SHUTDOWN flags, and the send order. How a connection uses it is
// connection-state.test.ts.
import { describe, expect, it } from 'vitest';
import { Op, SHUTDOWN_BOTH, SHUTDOWN_RCV, SHUTDOWN_SEND } from '../../../src/devices/virtio/vsock/packet.js';
import { PendingPackets } from '../../../src/devices/virtio/vsock/pending-packets.js';

/** Empties the set in send order. */
function drain(owed: PendingPackets): number[] {
  const sent: number[] = [];
  for (let op = owed.first(); op !== undefined; op = owed.first()) {
    sent.push(op);
    owed.remove(op);
  }
  return sent;
}

describe('PendingPackets', () => {
  it('starts empty', () => {
    const owed = new PendingPackets();
    expect(owed.isEmpty).toBe(true);
    expect(owed.first()).toBeUndefined();
    expect(owed.firstBeforeData()).toBeUndefined();
    expect(owed.shutdownFlags).toBe(0);
  });

  it('gives REQUEST, RESPONSE, SHUTDOWN, CREDIT_UPDATE in that order, whatever the order they were owed in', () => {
    const owed = new PendingPackets();
    owed.add(Op.CreditUpdate);
    owed.addShutdown(SHUTDOWN_SEND);
    owed.add(Op.Response);
    owed.add(Op.Request);
    expect(drain(owed)).toEqual([Op.Request, Op.Response, Op.Shutdown, Op.CreditUpdate]);
    expect(owed.isEmpty).toBe(true);
  });

  it('owes each packet once, however often it is added', () => {
    const owed = new PendingPackets();
    owed.add(Op.CreditUpdate);
    owed.add(Op.CreditUpdate);
    expect(drain(owed)).toEqual([Op.CreditUpdate]);
  });

  it('puts only the handshake before data', () => {
    const owed = new PendingPackets();
    owed.addShutdown(SHUTDOWN_SEND);
    owed.add(Op.CreditUpdate);
    expect(owed.firstBeforeData()).toBeUndefined();
    expect(owed.first()).toBe(Op.Shutdown);
    owed.add(Op.Response);
    expect(owed.firstBeforeData()).toBe(Op.Response);
    owed.remove(Op.Response);
    owed.add(Op.Request);
    expect(owed.firstBeforeData()).toBe(Op.Request);
  });

  it('ORs SHUTDOWN flags, and forgets them when the SHUTDOWN is sent', () => {
    const owed = new PendingPackets();
    owed.addShutdown(SHUTDOWN_SEND);
    owed.addShutdown(SHUTDOWN_RCV);
    expect(owed.shutdownFlags).toBe(SHUTDOWN_BOTH);
    owed.remove(Op.Shutdown);
    expect(owed.has(Op.Shutdown)).toBe(false);
    expect(owed.shutdownFlags).toBe(0);
  });

  it('owes no SHUTDOWN once all its flags are withdrawn', () => {
    const owed = new PendingPackets();
    owed.addShutdown(SHUTDOWN_BOTH);
    owed.withdrawShutdown(SHUTDOWN_SEND);
    expect(owed.shutdownFlags).toBe(SHUTDOWN_RCV);
    expect(owed.has(Op.Shutdown)).toBe(true);
    owed.withdrawShutdown(SHUTDOWN_RCV);
    expect(owed.has(Op.Shutdown)).toBe(false);
    expect(owed.isEmpty).toBe(true);
  });

  it('owes no SHUTDOWN for no flags', () => {
    const owed = new PendingPackets();
    owed.addShutdown(0);
    expect(owed.isEmpty).toBe(true);
  });
});
