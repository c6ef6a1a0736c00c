// Malformed rings and descriptor chains from a hostile driver: each one must
// end in DEVICE_NEEDS_RESET with a reason, never in an exception escaping to
// the VMM (the fuzz test checks "never outside guest memory").
import { describe, expect, it } from 'vitest';
import { VIRTIO_F_RING_INDIRECT_DESC } from '../../../src/devices/virtio/device.js';
import { MmioInterrupt } from '../../../src/devices/virtio/mmio-transport.js';
import {
  VIRTQ_DESC_F_INDIRECT as INDIRECT, VIRTQ_DESC_F_NEXT as NEXT, VIRTQ_DESC_F_WRITE as WRITE,
  VirtioTestDriver, type DriverQueue, type RawDescriptor,
} from '../../helpers/virtio-driver.js';
import { RecordingDevice } from './recording-device.js';

const MEMORY = 8 << 20;

type Program = (queue: DriverQueue, buffer: (size: number) => number) => number | void;

const d = (address: number | bigint, length: number, flags = 0, next = 0): RawDescriptor => ({ address, length, flags, next });

const cases: [string, RegExp, Program, bigint?][] = [
  ['a two-descriptor loop', /longer than its table/, (q, b) => {
    q.writeDescriptor(0, d(b(8), 8, NEXT, 1));
    q.writeDescriptor(1, d(b(8), 8, NEXT, 0));
  }],
  ['a descriptor that links to itself', /longer than its table/, (q, b) => q.writeDescriptor(0, d(b(8), 8, NEXT, 0))],
  ['a link past the descriptor table', /links to descriptor 16, outside/, (q, b) => q.writeDescriptor(0, d(b(8), 8, NEXT, 16))],
  ['a head index past the descriptor table', /head descriptor 40 is outside/, () => 40],
  ['an address past the end of memory', /outside guest memory/, (q) => q.writeDescriptor(0, d(MEMORY, 1))],
  ['a buffer that runs past the end of memory', /outside guest memory/, (q) => q.writeDescriptor(0, d(MEMORY - 4, 8, WRITE))],
  ['a 64-bit address', /out of range/, (q) => q.writeDescriptor(0, d(1n << 63n, 8))],
  ['a 4 GiB length', /outside guest memory/, (q, b) => q.writeDescriptor(0, d(b(8), 0xffff_ffff))],
  ['a readable descriptor after a writable one', /readable descriptor after a device-writable/, (q, b) => {
    q.writeDescriptor(0, d(b(8), 8, WRITE | NEXT, 1));
    q.writeDescriptor(1, d(b(8), 8, 0));
  }],
  ['an indirect descriptor when INDIRECT_DESC was not negotiated', /was not negotiated/, (q, b) => {
    q.writeDescriptor(0, d(b(16), 16, INDIRECT));
  }, 0n],
  ['an indirect descriptor that also has NEXT', /also has the NEXT flag/, (q, b) => {
    const table = b(16);
    q.writeDescriptorAt(table, 0, d(b(8), 8));
    q.writeDescriptor(0, d(table, 16, INDIRECT | NEXT, 1));
    q.writeDescriptor(1, d(b(8), 8));
  }],
  ['an indirect descriptor in the middle of a chain', /in the middle of a chain/, (q, b) => {
    q.writeDescriptor(0, d(b(8), 8, NEXT, 1));
    q.writeDescriptor(1, d(b(16), 16, INDIRECT));
  }],
  ['an indirect table of 24 bytes', /not a non-zero multiple of 16/, (q, b) => q.writeDescriptor(0, d(b(24), 24, INDIRECT))],
  ['an empty indirect table', /not a non-zero multiple of 16/, (q, b) => q.writeDescriptor(0, d(b(16), 0, INDIRECT))],
  ['an indirect table outside memory', /indirect table .* is outside guest memory/, (q) => q.writeDescriptor(0, d(MEMORY - 16, 32, INDIRECT))],
  ['an indirect table of 2048 descriptors', /at most 1024/, (q, b) => q.writeDescriptor(0, d(b(2048 * 16), 2048 * 16, INDIRECT))],
  ['an indirect table inside an indirect table', /inside an indirect table/, (q, b) => {
    const inner = b(16);
    q.writeDescriptorAt(inner, 0, d(b(8), 8));
    const outer = b(32);
    q.writeDescriptorAt(outer, 0, d(b(8), 8, NEXT, 1));
    q.writeDescriptorAt(outer, 1, d(inner, 16, INDIRECT));
    q.writeDescriptor(0, d(outer, 32, INDIRECT));
  }],
  ['a loop inside an indirect table', /longer than its table of 2/, (q, b) => {
    const table = b(32);
    q.writeDescriptorAt(table, 0, d(b(8), 8, NEXT, 1));
    q.writeDescriptorAt(table, 1, d(b(8), 8, NEXT, 0));
    q.writeDescriptor(0, d(table, 32, INDIRECT));
  }],
  ['a link past the end of an indirect table', /links to descriptor 2, outside its table of 2/, (q, b) => {
    const table = b(32);
    q.writeDescriptorAt(table, 0, d(b(8), 8, NEXT, 1));
    q.writeDescriptorAt(table, 1, d(b(8), 8, NEXT, 2));
    q.writeDescriptor(0, d(table, 32, INDIRECT));
  }],
  ['a chain of more than 4 GiB', /longer than 4 GiB/, (q, b) => {
    const table = b(1024 * 16);
    for (let i = 0; i < 1024; i++) q.writeDescriptorAt(table, i, d(0, MEMORY, WRITE | (i < 1023 ? NEXT : 0), i + 1));
    q.writeDescriptor(0, d(table, 1024 * 16, INDIRECT));
  }],
];

describe('malformed descriptor chains', () => {
  it.each(cases)('%s sets DEVICE_NEEDS_RESET', (_name, reason, program, features = VIRTIO_F_RING_INDIRECT_DESC) => {
    const device = new RecordingDevice();
    const driver = VirtioTestDriver.create(device, { memorySize: MEMORY, features });
    const queue = driver.queue(0);
    // A well-formed buffer first, served normally.
    const good = queue.addBuffer([{ readable: Uint8Array.from([1, 2]) }, { writable: 2 }]);
    queue.kick();
    expect(queue.takeUsed().length).toBe(1);
    const head = program(queue, (size) => driver.allocator.alloc(size, 16)) ?? 0;
    queue.publish(head);
    expect(() => queue.kick()).not.toThrow();

    expect(device.seen.map((s) => s.head)).toEqual([good]);
    expect(device.errors).toEqual([expect.stringMatching(reason)]);
    expect(driver.needsReset).toBe(true);
    expect(driver.acknowledgeInterrupt()).toBe(MmioInterrupt.ConfigChange | MmioInterrupt.UsedBuffer);
    expect(driver.transportLog.at(-1)).toMatch(/needs a reset/);
    // further notifications are ignored until the driver resets the device
    queue.kick();
    expect(device.notifies).toEqual([0, 0]);
    driver.initialize();
    expect(driver.needsReset).toBe(false);
    driver.queue(1).addBuffer([{ readable: Uint8Array.from([3]) }]);
    driver.queue(1).kick();
    expect([...device.seen.at(-1)!.data]).toEqual([3]);
  });
});
