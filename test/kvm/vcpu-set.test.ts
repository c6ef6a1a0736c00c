// The main-thread side of all vCPUs of a VM (VcpuSet) with fake vCPU workers
// (fake-vcpu-worker.ts): real threads and real races, no KVM needed, so
// these run on any machine. The same ordering cases with real guests are in
// vcpu-thread.test.ts.
//
// To make a race happen every time, a device blocks the main thread (as a
// busy device or a GC pause would) until the other vCPU has done its part.

import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { Bus } from '../../src/bus/bus.js';
import type { VcpuFd } from '../../src/kvm/vcpu-fd.js';
import { VcpuSet } from '../../src/vcpu/vcpu-set.js';
import type { VcpuThread } from '../../src/vcpu/vcpu-thread.js';
import { FAKE_RAM_BYTES, FakeProgram, FakeVcpuData, Ram } from './fake-vcpu-worker.js';
import { RecordingDevice } from './recording-device.js';

const FAKE_WORKER = new URL('./fake-vcpu-worker.ts', import.meta.url);

/** Enough of a VcpuFd for a fake worker: the thread only sets immediate_exit. */
const fakeVcpu = (id: number) => ({ id, fd: -1, mmapSize: 0, run: { immediateExit: false } }) as unknown as VcpuFd;

let sets: VcpuSet[] = [];
afterEach(async () => {
  await Promise.all(sets.map((set) => set.stopAll()));
  sets = [];
});

/** `vcpuCount` fake vCPUs running `program`, with recording devices on port 0x3f8 and MMIO 0x1000_0000. */
function fakeGuest(program: FakeProgram, vcpuCount: number) {
  const ram = new Int32Array(new SharedArrayBuffer(FAKE_RAM_BYTES));
  const uart = new RecordingDevice();
  const mmio = new RecordingDevice();
  const pio = new Bus('pio', 'pio');
  const mmioBus = new Bus('mmio', 'mmio');
  pio.register(0x3f8, 8, uart, 'recording uart');
  mmioBus.register(0x1000_0000, 0x1000, mmio, 'recording mmio');
  const set = new VcpuSet({ buses: { pio, mmio: mmioBus } });
  sets.push(set);
  const data: FakeVcpuData = { program, ram: ram.buffer as SharedArrayBuffer };
  const threads = Array.from({ length: vcpuCount }, (_, id) => set.add({
    vcpu: fakeVcpu(id), fakeWorker: { module: FAKE_WORKER, data },
  }));
  return { ram, uart, mmio, set, threads };
}

/** Blocks the main thread until `condition` (or 10 s). */
function blockUntil(condition: () => boolean): void {
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 10_000 && !condition(); i++) Atomics.wait(sleeper, 0, 0, 1);
}

const u32 = (bytes: number[]) => new DataView(Uint8Array.from(bytes).buffer).getUint32(0, true);

describe('VcpuSet with fake vCPUs', () => {
  it('devices see the writes of two vCPUs taking turns in the order they were made', async () => {
    const LIMIT = 64;
    const h = fakeGuest('take-turns', 2);
    h.ram[Ram.LIMIT] = LIMIT;
    const record = h.uart.write.bind(h.uart);
    h.uart.write = (offset, data) => {
      record(offset, data);
      // While the main thread is busy with write k, both vCPUs post another one.
      const k = u32([...data]);
      if (k % 4 === 0 && k + 3 < LIMIT) blockUntil(() => Atomics.load(h.ram, Ram.TURN) >= k + 3);
    };
    await h.set.startAll();
    await Promise.all(h.threads.map((t) => t.finished));
    expect(h.uart.writes.map((w) => u32(w.bytes))).toEqual(Array.from({ length: LIMIT }, (_, i) => i));
  });

  it('a read by one vCPU sees the write another vCPU made before it (ordered through guest RAM)', async () => {
    const h = fakeGuest('flag-then-read', 2);
    let writesSeenByRead = -1;
    h.uart.onRead = () => { writesSeenByRead = h.uart.writes.filter((w) => w.offset === 0).length; };
    const record = h.uart.write.bind(h.uart);
    h.uart.write = (offset, data) => {
      record(offset, data);
      // vCPU 1's marker: hold the main thread until vCPU 0 has written and vCPU 1 reads.
      if (offset === 7) blockUntil(() => h.threads[1]!.waitingForRead);
    };
    await h.set.startAll();
    await Promise.all(h.threads.map((t) => t.finished));
    expect(h.uart.reads).toHaveLength(1);
    expect(writesSeenByRead).toBe(1);
  });

  it('drainPostedWrites() applies, there and then, a write that is still in the ring', async () => {
    const h = fakeGuest('write-then-flag', 1);
    await h.set.startAll();
    // The main thread does not yield from here on, so only the call below can apply the write.
    blockUntil(() => Atomics.load(h.ram, Ram.DONE) === 1);
    expect(h.mmio.writes).toEqual([]);
    h.set.drainPostedWrites();
    expect(h.mmio.writes).toEqual([{ offset: 0x10, bytes: [1, 0, 0, 0] }]);
    await h.threads[0]!.finished;
    expect(h.mmio.writes).toHaveLength(1); // applied once
  });

  it('startAll() stops the vCPUs it started when one of them cannot start', async () => {
    const h = fakeGuest('idle', 4);
    const [first, second, third, fourth] = h.threads as [VcpuThread, VcpuThread, VcpuThread, VcpuThread];
    third.start = () => {
      // Fail only once the first two threads exist in the kernel, so that the check below means something.
      blockUntil(() => first.kernelThreadId !== undefined && second.kernelThreadId !== undefined);
      throw new Error('no thread for vCPU 2');
    };
    await expect(h.set.startAll()).rejects.toThrowError('no thread for vCPU 2');
    for (const thread of [first, second]) {
      expect(thread.kernelThreadId).toBeDefined();
      expect(thread.running).toBe(false);
      expect(existsSync(`/proc/self/task/${thread.kernelThreadId}`)).toBe(false);
    }
    expect(fourth.running).toBe(false);
    expect(fourth.kernelThreadId).toBeUndefined();
  });
});
