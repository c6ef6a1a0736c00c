// The worker <-> main-thread channels, driven from one thread: the VM's
// write ring (order across vCPUs, exact bytes, wrap-around, full ring, slots
// claimed but not yet published) and a vCPU's read mailbox.

import { describe, expect, it } from 'vitest';
import {
  Ctl, Mailbox, RING_ENTRY_WORDS, SharedChannel, SharedCtl, Space, VcpuChannel,
} from '../../../src/vcpu/channel.js';
import { answerRead, pendingRead } from '../../../src/vcpu/read-mailbox.js';
import { appliedThrough, claimedWritesMark, drainWrites, postWrite } from '../../../src/vcpu/write-ring.js';

type Seen = [vcpuId: number, space: number, address: number, bytes: number[]];
const collect = (shared: SharedChannel): Seen[] => {
  const seen: Seen[] = [];
  drainWrites(shared, (vcpuId, space, address, data) => seen.push([vcpuId, space, address, [...data]]));
  return seen;
};

describe('write ring', () => {
  it('delivers writes in posting order with their vCPU, space, address and bytes', () => {
    const shared = SharedChannel.create(4);
    const vcpu0 = VcpuChannel.create();
    const vcpu1 = VcpuChannel.create();
    expect(postWrite(shared, vcpu0, 0, Space.PIO, 0x3f8, Uint8Array.of(0x41))).toBe(true);
    expect(postWrite(shared, vcpu1, 1, Space.MMIO, 0xd000_0050, Uint8Array.of(1, 2, 3, 4))).toBe(true);
    expect(postWrite(shared, vcpu0, 300, Space.MMIO, 2 ** 40 + 8, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8))).toBe(true);
    expect(collect(shared)).toEqual([
      [0, Space.PIO, 0x3f8, [0x41]],
      [1, Space.MMIO, 0xd000_0050, [1, 2, 3, 4]],
      [300, Space.MMIO, 2 ** 40 + 8, [1, 2, 3, 4, 5, 6, 7, 8]],
    ]);
    expect(collect(shared)).toEqual([]);
  });

  it('rings the main doorbell per write and wakes the writers per drain', () => {
    const shared = SharedChannel.create(4);
    const vcpu = VcpuChannel.create();
    postWrite(shared, vcpu, 0, Space.PIO, 1, Uint8Array.of(1));
    postWrite(shared, vcpu, 0, Space.PIO, 2, Uint8Array.of(2));
    expect(shared.control[SharedCtl.MAIN_DOORBELL]).toBe(2);
    collect(shared);
    expect(shared.control[SharedCtl.RING_SPACE]).toBe(1);
    collect(shared); // nothing to drain: nobody to wake
    expect(shared.control[SharedCtl.RING_SPACE]).toBe(1);
  });

  it('wraps around the ring and past 2^31 writes', () => {
    const shared = SharedChannel.create(4);
    const vcpu = VcpuChannel.create();
    shared.control[SharedCtl.RING_HEAD] = 0x7fff_fffe;
    shared.control[SharedCtl.RING_TAIL] = 0x7fff_fffe;
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 4; i++) postWrite(shared, vcpu, 0, Space.PIO, i, Uint8Array.of(round, i));
      expect(collect(shared)).toEqual([0, 1, 2, 3].map((i) => [0, Space.PIO, i, [round, i]]));
    }
    expect(shared.control[SharedCtl.RING_HEAD]).toBe(-0x7fff_fff6); // wrapped
  });

  it('gives up on a full ring once stop is requested', () => {
    const shared = SharedChannel.create(2);
    const vcpu = VcpuChannel.create();
    postWrite(shared, vcpu, 0, Space.PIO, 1, Uint8Array.of(1));
    postWrite(shared, vcpu, 0, Space.PIO, 2, Uint8Array.of(2));
    Atomics.store(vcpu.control, Ctl.STOP, 1);
    expect(postWrite(shared, vcpu, 0, Space.PIO, 3, Uint8Array.of(3))).toBe(false);
    expect(collect(shared).map((s) => s[2])).toEqual([1, 2]);
  });

  it('stops at a slot claimed but not yet published, and goes on once it is', () => {
    const shared = SharedChannel.create(4);
    const vcpu = VcpuChannel.create();
    postWrite(shared, vcpu, 0, Space.PIO, 1, Uint8Array.of(1));
    // Another worker claims the next slot and is still filling it...
    const claimed = Atomics.add(shared.control, SharedCtl.RING_HEAD, 1);
    // ...while a third write is published after it.
    postWrite(shared, vcpu, 0, Space.PIO, 3, Uint8Array.of(3));
    const mark = claimedWritesMark(shared);
    expect(collect(shared).map((s) => s[2])).toEqual([1]);
    expect(appliedThrough(shared, mark)).toBe(false);
    // The other worker publishes: fill the entry the way postWrite does, stamp last.
    const word = (claimed & 3) * RING_ENTRY_WORDS;
    shared.ringWords[word + 1] = Space.PIO | (1 << 8) | (1 << 16);
    shared.ringWords[word + 2] = 2;
    shared.ringWords[word + 3] = 0;
    shared.ringBytes[word * 4 + 16] = 2;
    Atomics.store(shared.ringWords, word, claimed + 1);
    expect(collect(shared)).toEqual([[1, Space.PIO, 2, [2]], [0, Space.PIO, 3, [3]]]);
    expect(appliedThrough(shared, mark)).toBe(true);
  });

  it('consumes the entry a device threw on, and the ones before it', () => {
    const shared = SharedChannel.create(4);
    const vcpu = VcpuChannel.create();
    [1, 2, 3].forEach((a) => postWrite(shared, vcpu, 0, Space.PIO, a, Uint8Array.of(a)));
    const seen: number[] = [];
    expect(() => drainWrites(shared, (_v, _s, address) => {
      seen.push(address);
      if (address === 2) throw new Error('device broke');
    })).toThrowError('device broke');
    expect(collect(shared).map((s) => s[2])).toEqual([3]);
    expect(seen).toEqual([1, 2]);
  });

  it('rejects ring sizes that are not powers of two', () => {
    expect(() => SharedChannel.create(1000)).toThrowError('write ring size 1000 must be a power of two');
  });
});

describe('read mailbox (main side)', () => {
  it('sees a posted request and answers each access', () => {
    const channel = VcpuChannel.create();
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
