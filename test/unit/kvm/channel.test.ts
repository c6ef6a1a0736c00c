// The worker <-> main-thread channel, driven from one thread: the write ring
// (order, exact bytes, wrap-around, full ring) and the read mailbox.

import { describe, expect, it } from 'vitest';
import { Ctl, Mailbox, Space, VcpuChannel } from '../../../src/vcpu/channel.js';
import { answerRead, pendingRead } from '../../../src/vcpu/read-mailbox.js';
import { drainWrites, postWrite } from '../../../src/vcpu/write-ring.js';

type Seen = [number, number, number[]];
const collect = (channel: VcpuChannel): Seen[] => {
  const seen: Seen[] = [];
  drainWrites(channel, (space, address, data) => seen.push([space, address, [...data]]));
  return seen;
};

describe('write ring', () => {
  it('delivers writes in order with their space, address and bytes', () => {
    const channel = VcpuChannel.create(4);
    expect(postWrite(channel, Space.PIO, 0x3f8, Uint8Array.of(0x41))).toBe(true);
    expect(postWrite(channel, Space.MMIO, 0xd000_0050, Uint8Array.of(1, 2, 3, 4))).toBe(true);
    expect(postWrite(channel, Space.MMIO, 2 ** 40 + 8, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8))).toBe(true);
    expect(collect(channel)).toEqual([
      [Space.PIO, 0x3f8, [0x41]],
      [Space.MMIO, 0xd000_0050, [1, 2, 3, 4]],
      [Space.MMIO, 2 ** 40 + 8, [1, 2, 3, 4, 5, 6, 7, 8]],
    ]);
    expect(collect(channel)).toEqual([]);
  });

  it('rings the main doorbell per write and the worker doorbell per drain', () => {
    const channel = VcpuChannel.create(4);
    postWrite(channel, Space.PIO, 1, Uint8Array.of(1));
    postWrite(channel, Space.PIO, 2, Uint8Array.of(2));
    expect(channel.control[Ctl.MAIN_DOORBELL]).toBe(2);
    collect(channel);
    expect(channel.control[Ctl.WORKER_DOORBELL]).toBe(1);
  });

  it('wraps around the ring and past 2^31 writes', () => {
    const channel = VcpuChannel.create(4);
    channel.control[Ctl.RING_HEAD] = 0x7fff_fffe;
    channel.control[Ctl.RING_TAIL] = 0x7fff_fffe;
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 4; i++) postWrite(channel, Space.PIO, i, Uint8Array.of(round, i));
      expect(collect(channel)).toEqual([0, 1, 2, 3].map((i) => [Space.PIO, i, [round, i]]));
    }
    expect(channel.control[Ctl.RING_HEAD]).toBe(-0x7fff_fff6); // wrapped
  });

  it('gives up on a full ring once stop is requested', () => {
    const channel = VcpuChannel.create(2);
    postWrite(channel, Space.PIO, 1, Uint8Array.of(1));
    postWrite(channel, Space.PIO, 2, Uint8Array.of(2));
    Atomics.store(channel.control, Ctl.STOP, 1);
    expect(postWrite(channel, Space.PIO, 3, Uint8Array.of(3))).toBe(false);
    expect(collect(channel).map((s) => s[1])).toEqual([1, 2]);
  });

  it('consumes the entry a device threw on, and the ones before it', () => {
    const channel = VcpuChannel.create(4);
    [1, 2, 3].forEach((a) => postWrite(channel, Space.PIO, a, Uint8Array.of(a)));
    const seen: number[] = [];
    expect(() => drainWrites(channel, (_s, address) => {
      seen.push(address);
      if (address === 2) throw new Error('device broke');
    })).toThrowError('device broke');
    expect(collect(channel).map((s) => s[1])).toEqual([3]);
    expect(seen).toEqual([1, 2]);
  });

  it('rejects ring sizes that are not powers of two', () => {
    expect(() => VcpuChannel.create(1000)).toThrowError('write ring size 1000 must be a power of two');
  });
});

describe('read mailbox (main side)', () => {
  it('sees a posted request and answers each access', () => {
    const channel = VcpuChannel.create(4);
    expect(pendingRead(channel)).toBeUndefined();
    const c = channel.control;
    c[Ctl.MAILBOX_SPACE] = Space.MMIO;
    c[Ctl.MAILBOX_SIZE] = 2;
    c[Ctl.MAILBOX_COUNT] = 3;
    c[Ctl.MAILBOX_ADDRESS_LOW] = 0x1000;
    c[Ctl.MAILBOX_ADDRESS_HIGH] = 1;
    Atomics.store(c, Ctl.MAILBOX_STATE, Mailbox.REQUEST);
    const read = pendingRead(channel)!;
    expect(read).toEqual({ space: Space.MMIO, address: 2 ** 32 + 0x1000, size: 2, count: 3 });
    let n = 0;
    answerRead(channel, read, (data) => { data[0] = ++n; data[1] = 0xa0; });
    expect([...channel.mailboxData.subarray(0, 6)]).toEqual([1, 0xa0, 2, 0xa0, 3, 0xa0]);
    expect(c[Ctl.MAILBOX_STATE]).toBe(Mailbox.ANSWERED);
    expect(c[Ctl.WORKER_DOORBELL]).toBe(1);
    expect(pendingRead(channel)).toBeUndefined();
  });
});
