// Random descriptor tables and rings from a seeded PRNG: the device must
// never throw out of the transport and never touch host memory outside the
// guest's. How we prove the second part:
//   - guest memory is two regions with a hole between them, backed by one
//     host buffer that also holds guard bytes before, in the hole and after;
//   - guard bytes are 0xEE, and no byte of guest memory is ever 0xEE (we
//     rewrite any the fuzzer produces, and the device only writes 0x5A and
//     small lengths), so a 0xEE in anything the device read = a read outside;
//   - the guard bytes must be unchanged at the end = no write outside.
import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../../src/memory/guest-memory.js';
import { RING_FEATURES } from '../../../src/devices/virtio/queue.js';
import {
  DESCRIPTOR_SIZE, VirtioTestDriver, type DriverQueue,
} from '../../helpers/virtio-driver.js';
import { RecordingDevice } from './recording-device.js';

const GUARD = 0xee;
// guest [0x0000, 0x8000) -> host 0x1000;  guest [0x10000, 0x14000) -> host 0xa000
const REGION_A = { guestAddress: 0x0000, size: 0x8000, hostOffset: 0x1000 };
const REGION_B = { guestAddress: 0x10000, size: 0x4000, hostOffset: 0xa000 };
const HOST_SIZE = 0xf000;
const GUARDS: [number, number][] = [[0, 0x1000], [0x9000, 0xa000], [0xe000, 0xf000]];
const QUEUE_SIZE = 16;
const ITERATIONS = 3000;

/** mulberry32: small, seeded, good enough to pick test cases. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

describe('virtqueue fuzzing', () => {
  it(`survives ${ITERATIONS} random descriptor tables without touching host memory outside the guest`, () => {
    const host = new Uint8Array(new SharedArrayBuffer(HOST_SIZE));
    for (const [start, end] of GUARDS) host.fill(GUARD, start, end);
    const memory = new GuestMemory(host, [REGION_A, REGION_B]);
    const random = prng(0x7357_11);
    const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)]!;
    const int = (limit: number) => Math.floor(random() * limit);
    const hostRangeOf = (address: number, length: number) => {
      const r = [REGION_A, REGION_B].find((x) => address >= x.guestAddress && address + length <= x.guestAddress + x.size)!;
      return host.subarray(r.hostOffset + address - r.guestAddress, r.hostOffset + address - r.guestAddress + length);
    };
    /** Rewrites 0xEE in what the fuzzer wrote so that only guard bytes are 0xEE. */
    const sanitize = (address: number, length: number) => {
      const bytes = hostRangeOf(address, length);
      for (let i = 0; i < bytes.length; i++) if (bytes[i] === GUARD) bytes[i] = GUARD - 1;
    };
    const randomAddress = (): number | bigint => pick([
      () => int(REGION_A.size),
      () => REGION_B.guestAddress + int(REGION_B.size),
      () => REGION_A.size - int(64), // near the end of region A, into the hole
      () => REGION_B.guestAddress - int(64), // in the hole, before region B
      () => REGION_B.guestAddress + REGION_B.size - int(64),
      () => 0x20000 + int(1 << 20), // beyond memory
      () => 2 ** 32 + int(64),
      () => 2n ** 63n + BigInt(int(64)),
    ])();
    const randomLength = () => pick([0, 1 + int(16), int(4096), 16 * (1 + int(8)), 0xffff_ffff, 0x8000 - int(16)]);
    const randomFlags = () => (random() < 0.95 ? int(8) : int(0x10000));
    const randomDescriptor = () => ({
      address: randomAddress(), length: randomLength(), flags: randomFlags(),
      next: random() < 0.9 ? int(QUEUE_SIZE) : int(0x10000),
    });

    const device = new RecordingDevice({ queues: [QUEUE_SIZE] });
    device.respond = (chain) => new Uint8Array(Math.min(chain.writableLength, 16)).fill(0x5a);
    const outcomes = { served: 0, failed: 0 };
    for (let iteration = 0; iteration < ITERATIONS; iteration++) {
      const features = pick([0n, RING_FEATURES, 1n << 28n, 1n << 29n]);
      const driver = VirtioTestDriver.create(device, {
        memory, heap: { start: 0x1000, end: REGION_A.size }, features,
      });
      const queue: DriverQueue = driver.queue(0);
      // a few indirect tables with random entries, somewhere in guest memory
      const tables = [0, 1, 2].map(() => {
        const entries = 1 + int(8);
        const table = driver.allocator.alloc(entries * DESCRIPTOR_SIZE, 16);
        for (let i = 0; i < entries; i++) {
          const entry = randomDescriptor();
          queue.writeDescriptorAt(table, i, { ...entry, next: random() < 0.9 ? int(entries + 1) : entry.next });
        }
        sanitize(table, entries * DESCRIPTOR_SIZE);
        return { table, length: entries * DESCRIPTOR_SIZE };
      });
      for (let i = 0; i < QUEUE_SIZE; i++) {
        const entry = randomDescriptor();
        if (random() < 0.2) {
          const t = pick(tables);
          Object.assign(entry, { address: t.table, length: random() < 0.9 ? t.length : randomLength() });
        }
        queue.writeDescriptor(i, entry);
      }
      sanitize(queue.descTable, QUEUE_SIZE * DESCRIPTOR_SIZE);
      const published = random() < 0.1 ? int(0x10000) : 1 + int(4);
      for (let i = 0; i < Math.min(published, QUEUE_SIZE); i++) queue.publish(random() < 0.95 ? int(QUEUE_SIZE) : int(0x10000));
      queue.setAvailIndex(published);
      memory.writeU16(queue.availRing, int(2)); // flags
      sanitize(queue.availRing, 6 + 2 * QUEUE_SIZE);

      const seenBefore = device.seen.length;
      expect(() => queue.kick()).not.toThrow();
      outcomes.failed += driver.needsReset ? 1 : 0;
      outcomes.served += device.seen.length - seenBefore;
      for (const seen of device.seen.slice(seenBefore)) {
        if (seen.data.includes(GUARD)) throw new Error(`iteration ${iteration}: the device read a guard byte`);
        for (const part of [...seen.readable, ...seen.writable]) {
          if (!memory.contains(part.address, part.length)) throw new Error(`iteration ${iteration}: descriptor outside memory`);
        }
      }
      device.seen.length = 0;
      driver.reset();
    }
    for (const [start, end] of GUARDS) {
      expect(host.subarray(start, end).every((b) => b === GUARD)).toBe(true);
    }
    // the fuzzer must exercise both paths to mean anything
    expect(outcomes.served).toBeGreaterThan(ITERATIONS / 10);
    expect(outcomes.failed).toBeGreaterThan(ITERATIONS / 2);
  });
});
