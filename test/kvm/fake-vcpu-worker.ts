// A fake vCPU worker for the tests that need no KVM: it speaks the same
// protocol as src/vcpu/vcpu-worker.ts (posted writes, mailbox reads, the
// stop flag) but its "guest" is a small program written in TypeScript, with
// a SharedArrayBuffer standing in for guest RAM. So the main-thread side
// (VcpuSet, VcpuThread) runs with real threads and real races anywhere.

import { isMainThread, parentPort } from 'node:worker_threads';
import { libc } from '../../src/sys/libc.js';
import { Ctl, SharedChannel, Space, SpaceId, VcpuChannel } from '../../src/vcpu/channel.js';
import { requestRead } from '../../src/vcpu/read-mailbox.js';
import type { VcpuStartMessage } from '../../src/vcpu/vcpu-worker.js';
import { postWrite } from '../../src/vcpu/write-ring.js';

/** Indexes of the Int32 words of the fake guest RAM the programs use. */
export const Ram = { TURN: 0, LIMIT: 1, GO: 2, FLAG: 3, DONE: 4 } as const;
export const FAKE_RAM_BYTES = 64;

export type FakeProgram =
  /** Runs until stopped. */
  | 'idle'
  /** vCPU i writes TURN to port 0x3f8 when TURN % 2 === i, then passes the turn, until TURN reaches LIMIT. */
  | 'take-turns'
  /** vCPU 1: marker write to 0x3ff, GO = 1, waits for FLAG, reads 0x3f8. vCPU 0: waits for GO, writes 0x3f8, FLAG = 1. */
  | 'flag-then-read'
  /** Writes 1 to MMIO 0x1000_0010, then DONE = 1. */
  | 'write-then-flag';

export interface FakeVcpuData {
  program: FakeProgram;
  ram: SharedArrayBuffer;
}

function run(data: VcpuStartMessage & { fakeData: FakeVcpuData }): void {
  const channel = new VcpuChannel(data.channel);
  const shared = new SharedChannel(data.shared);
  const ram = new Int32Array(data.fakeData.ram);
  const id = data.vcpuId;
  Atomics.store(channel.control, Ctl.THREAD_ID, libc.gettid());

  const write = (space: SpaceId, address: number, bytes: Uint8Array) =>
    postWrite(shared, channel, id, space, address, bytes);
  const read = (space: SpaceId, address: number, size: number) =>
    requestRead(shared, channel, space, address, size, 1, new Uint8Array(size));
  const set = (index: number, value: number) => {
    Atomics.store(ram, index, value);
    Atomics.notify(ram, index);
  };
  /** Like a guest spinning on a RAM word, without burning the CPU. */
  const waitFor = (index: number, ok: (value: number) => boolean): number => {
    for (;;) {
      const value = Atomics.load(ram, index);
      if (ok(value) || channel.stopRequested) return value;
      Atomics.wait(ram, index, value, 20);
    }
  };
  const u32 = (value: number) => Uint8Array.of(value, value >> 8, value >> 16, value >>> 24);

  switch (data.fakeData.program) {
    case 'idle':
      for (;;) {
        const seen = Atomics.load(channel.control, Ctl.WORKER_DOORBELL);
        if (channel.stopRequested) return;
        Atomics.wait(channel.control, Ctl.WORKER_DOORBELL, seen);
      }
    case 'take-turns': {
      const limit = Atomics.load(ram, Ram.LIMIT);
      for (;;) {
        const turn = waitFor(Ram.TURN, (value) => value >= limit || value % 2 === id);
        if (turn >= limit || channel.stopRequested) return;
        write(Space.PIO, 0x3f8, u32(turn));
        set(Ram.TURN, turn + 1);
      }
    }
    case 'flag-then-read':
      if (id === 0) {
        waitFor(Ram.GO, (value) => value !== 0);
        write(Space.PIO, 0x3f8, Uint8Array.of(1));
        set(Ram.FLAG, 1);
      } else {
        write(Space.PIO, 0x3ff, Uint8Array.of(0));
        set(Ram.GO, 1);
        waitFor(Ram.FLAG, (value) => value !== 0);
        read(Space.PIO, 0x3f8, 1);
      }
      return;
    case 'write-then-flag':
      write(Space.MMIO, 0x1000_0010, u32(1));
      set(Ram.DONE, 1);
      return;
  }
}

// Like vcpu-worker.ts, it waits for the start message that gives it its vCPU (null: none, end).
if (!isMainThread && parentPort) {
  parentPort.once('message', (data: (VcpuStartMessage & { fakeData: FakeVcpuData }) | null) => {
    if (data !== null) run(data);
  });
}
