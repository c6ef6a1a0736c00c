// The pieces a connection counts with, each on its own: credit.ts (what the
// guest may send, what we owe it in credit updates), the byte queue that holds
// data for the guest, and the host port allocator. Flow control through the
// whole device is flow-control.test.ts.
import { describe, expect, it } from 'vitest';
import { ByteQueue } from '../../../src/devices/virtio/vsock/byte-queue.js';
import { ReceiveCredit, SendCredit } from '../../../src/devices/virtio/vsock/credit.js';
import { FIRST_HOST_PORT, PortAllocator } from '../../../src/devices/virtio/vsock/port-allocator.js';

describe('ReceiveCredit (guest -> host window)', () => {
  it('accepts up to buf_alloc bytes in flight and refuses more', () => {
    const credit = new ReceiveCredit(1000);
    expect(credit.receive(600)).toBe(true);
    expect(credit.receive(400)).toBe(true);
    expect(credit.receive(1)).toBe(false);
  });

  it('frees space only once forwarded bytes were announced to the guest', () => {
    const credit = new ReceiveCredit(1000);
    credit.receive(1000);
    credit.forwarded(300);
    expect(credit.fwdCnt).toBe(300);
    expect(credit.receive(1)).toBe(false); // the guest has not heard about it
    credit.announced();
    expect(credit.receive(300)).toBe(true);
    expect(credit.receive(1)).toBe(false);
  });

  it('asks for a CREDIT_UPDATE once the guest sees less than half free and something was freed', () => {
    const credit = new ReceiveCredit(1000);
    credit.receive(400);
    credit.forwarded(400);
    expect(credit.updateNeeded).toBe(false); // guest still sees 600 free
    credit.receive(200);
    expect(credit.updateNeeded).toBe(true); // guest sees 400 free, we freed 400
    credit.announced();
    expect(credit.updateNeeded).toBe(false);
  });

  it('works across the 2^32 wrap of the counters', () => {
    const credit = new ReceiveCredit(1000);
    const big = 0xffff_ff00;
    // Walk the counters close to the wrap.
    for (let sent = 0; sent < big; sent += 1000) {
      const n = Math.min(1000, big - sent);
      credit.receive(n);
      credit.forwarded(n);
      credit.announced();
    }
    expect(credit.fwdCnt).toBe(big);
    expect(credit.receive(1000)).toBe(true);
    credit.forwarded(1000);
    expect(credit.fwdCnt).toBe((big + 1000) >>> 0);
    credit.announced();
    expect(credit.receive(1000)).toBe(true);
    expect(credit.receive(1)).toBe(false);
  });
});

describe('SendCredit (host -> guest window)', () => {
  it('is what the guest advertised minus what is in flight', () => {
    const credit = new SendCredit();
    expect(credit.available).toBe(0);
    credit.update(4096, 0);
    credit.sent(1000);
    expect(credit.available).toBe(3096);
    credit.update(4096, 1000);
    expect(credit.available).toBe(4096);
  });

  it('never goes negative when the guest shrinks its buffer', () => {
    const credit = new SendCredit();
    credit.update(4096, 0);
    credit.sent(4000);
    credit.update(1024, 0);
    expect(credit.available).toBe(0);
  });

  it('handles fwd_cnt wrapping past 2^32', () => {
    const credit = new SendCredit();
    credit.update(100, 0xffff_fff0);
    for (let i = 0; i < 0xffff_fff0; i += 0x4000_0000) credit.sent(Math.min(0x4000_0000, 0xffff_fff0 - i));
    credit.sent(0x20); // sent counter wraps to 0x10
    expect(credit.available).toBe(100 - 0x20);
    credit.update(100, 0x10);
    expect(credit.available).toBe(100);
  });

  it('remembers a CREDIT_REQUEST until an update opens the window again', () => {
    const credit = new SendCredit();
    credit.update(100, 0);
    credit.sent(100);
    credit.requestedUpdate();
    credit.update(100, 0); // news, but no room yet: still waiting for an answer
    expect(credit.updateRequested).toBe(true);
    credit.update(100, 1);
    expect(credit.updateRequested).toBe(false);
  });
});

describe('ByteQueue', () => {
  it('hands out bytes in order across chunk boundaries', () => {
    const queue = new ByteQueue();
    queue.push(Buffer.from('hello '));
    queue.push(Buffer.alloc(0));
    queue.push(Buffer.from('world'));
    expect(queue.length).toBe(11);
    const pieces: string[] = [];
    expect(queue.take(8, (piece) => pieces.push(piece.toString()))).toBe(8);
    expect(pieces).toEqual(['hello ', 'wo']);
    expect(queue.length).toBe(3);
    const rest: string[] = [];
    expect(queue.take(100, (piece) => rest.push(piece.toString()))).toBe(3);
    expect(rest).toEqual(['rld']);
    expect(queue.length).toBe(0);
  });
});

describe('PortAllocator', () => {
  it('counts up from 2^30 and never hands out a live port', () => {
    const ports = new PortAllocator();
    expect(FIRST_HOST_PORT).toBe(2 ** 30);
    const a = ports.allocate();
    const b = ports.allocate();
    expect([a, b]).toEqual([2 ** 30, 2 ** 30 + 1]);
    ports.release(a);
    expect(ports.allocate()).toBe(2 ** 30 + 2); // no immediate reuse
    expect(ports.liveCount).toBe(2);
  });

  it('wraps around after 2^32-1, skipping ports still in use', () => {
    const ports = new PortAllocator();
    const first = ports.allocate(); // 2^30 stays live
    (ports as unknown as { next: number }).next = 0xffff_ffff;
    expect(ports.allocate()).toBe(0xffff_ffff);
    expect(ports.allocate()).toBe(first + 1);
  });
});
