import { describe, expect, it } from 'vitest';
import { VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_RING_INDIRECT_DESC } from '../../../src/devices/virtio/device.js';
import { VirtioTestDriver, type BufferSegment } from '../../helpers/virtio-driver.js';
import { RecordingDevice } from './recording-device.js';

const bytes = (...values: number[]) => Uint8Array.from(values);

function setUp(features = ~0n, queues = [16, 16]) {
  const device = new RecordingDevice({ queues });
  const driver = VirtioTestDriver.create(device, { features, memorySize: 1 << 20 });
  return { device, driver, queue: driver.queue(0), context: () => device.context! };
}

describe('split virtqueue: chains', () => {
  it.each([false, true])('reads and writes a chain of several descriptors (indirect: %s)', (indirect) => {
    const { device, driver, queue } = setUp();
    const segments: BufferSegment[] = [
      { readable: bytes(1, 2, 3) }, { readable: bytes(4) }, { readable: bytes(5, 6) },
      { writable: 2 }, { writable: 3 },
    ];
    device.respond = () => bytes(0xa0, 0xa1, 0xa2, 0xa3);
    const head = queue.addBuffer(segments, { indirect });
    queue.kick();
    const [seen] = device.seen;
    expect(seen!.head).toBe(head);
    expect(seen!.readable.map((d) => d.length)).toEqual([3, 1, 2]);
    expect(seen!.writable.map((d) => d.length)).toEqual([2, 3]);
    expect([...seen!.data]).toEqual([1, 2, 3, 4, 5, 6]);
    const [used] = queue.takeUsed();
    expect(used!.length).toBe(4);
    expect([...used!.allWritable]).toEqual([0xa0, 0xa1, 0xa2, 0xa3, 0]);
    expect(queue.freeDescriptorCount).toBe(16);
    expect(driver.needsReset).toBe(false);
  });

  it('reads and writes at offsets that straddle descriptors', () => {
    const { device, queue } = setUp();
    device.respond = (chain) => {
      const part = new Uint8Array(3);
      expect(chain.read(2, part)).toBe(3); // bytes 2..4 span three descriptors
      expect([...part]).toEqual([3, 4, 5]);
      expect(chain.read(5, new Uint8Array(10))).toBe(1); // only one byte left
      expect(chain.read(6, new Uint8Array(1))).toBe(0);
      expect(chain.write(1, bytes(0xb1, 0xb2, 0xb3))).toBe(3);
      expect(chain.write(4, bytes(0xc4, 0xc5))).toBe(1); // cut at the end
      expect(chain.readableViews(1).map((v) => [...v])).toEqual([[2, 3], [4], [5, 6]]);
      expect(chain.writableViews(0, 2).map((v) => v.byteLength)).toEqual([2]);
      return new Uint8Array(0);
    };
    queue.addBuffer([{ readable: bytes(1, 2, 3) }, { readable: bytes(4) }, { readable: bytes(5, 6) }, { writable: 2 }, { writable: 3 }]);
    queue.kick();
    const [used] = queue.takeUsed();
    expect([...used!.allWritable]).toEqual([0, 0xb1, 0xb2, 0xb3, 0xc4]);
  });

  it('wraps the 16-bit ring indices', () => {
    const { device, queue } = setUp(~0n, [4, 4]);
    device.respond = (chain) => chain.readAll();
    let buffers = 0;
    const wrong: number[] = [];
    for (let i = 0; i < 65536 + 10; i++) {
      queue.addBuffer([{ readable: bytes(i & 0xff, i >> 8) }, { writable: 2 }]);
      buffers++;
      if (i % 3 === 0) {
        queue.addBuffer([{ readable: bytes(7) }]);
        buffers++;
      }
      queue.kick();
      const used = queue.takeUsed();
      const echoed = used[0]!.bytes;
      if (used.length !== (i % 3 === 0 ? 2 : 1) || echoed[0] !== (i & 0xff) || echoed[1] !== ((i >> 8) & 0xff)) wrong.push(i);
    }
    expect(wrong).toEqual([]);
    expect(buffers).toBeGreaterThan(65536);
    expect(queue.availIndex).toBe(buffers & 0xffff);
    expect(queue.usedIndex).toBe(queue.availIndex);
  });
});

describe('split virtqueue: the device-side API', () => {
  it('pop, undoPop and hasAvailable', () => {
    const { context, queue } = setUp();
    const q = context().queues[0]!;
    expect(q.hasAvailable()).toBe(false);
    expect(q.pop()).toBeNull();
    const first = queue.addBuffer([{ writable: 4 }]);
    const second = queue.addBuffer([{ writable: 4 }]);
    expect(q.hasAvailable()).toBe(true);
    expect(q.pop()!.head).toBe(first);
    q.undoPop();
    expect(q.pop()!.head).toBe(first);
    const chain = q.pop()!;
    expect(chain.head).toBe(second);
    expect(q.hasAvailable()).toBe(false);
    expect(() => q.pushUsed(chain, 5)).toThrow(RangeError);
    q.pushUsed(chain, 4);
    expect(queue.takeUsedRaw()).toEqual([{ head: second, length: 4 }]);
  });

  it('without EVENT_IDX, interrupts follow VIRTQ_AVAIL_F_NO_INTERRUPT', () => {
    const { driver, queue } = setUp(VIRTIO_F_RING_INDIRECT_DESC);
    queue.addBuffer([{ writable: 1 }]);
    queue.kick();
    expect(driver.interrupts.count).toBe(1);
    queue.setInterruptsEnabled(false);
    queue.addBuffer([{ writable: 1 }]);
    queue.kick();
    expect(driver.interrupts.count).toBe(1);
    expect(queue.takeUsed().length).toBe(2);
  });

  it('with EVENT_IDX, interrupts only when the used index passes used_event', () => {
    const { context, driver, queue } = setUp(VIRTIO_F_RING_EVENT_IDX);
    const q = context().queues[0]!;
    for (let i = 0; i < 6; i++) queue.addBuffer([{ writable: 1 }]);
    driver.memory.writeU16(queue.availRing + 4 + 2 * 16, 3); // used_event: "interrupt me after entry 3"
    const decisions: boolean[] = [];
    for (let i = 0; i < 6; i++) {
      q.pushUsed(q.pop()!, 0);
      decisions.push(q.needsInterrupt());
    }
    expect(decisions).toEqual([false, false, false, true, false, false]);
    // checking twice without new entries never asks twice
    expect(q.needsInterrupt()).toBe(false);
  });

  it('with EVENT_IDX, the device asks for a kick only once it has caught up', () => {
    const { context, device, queue } = setUp(VIRTIO_F_RING_EVENT_IDX);
    const q = context().queues[0]!;
    device.passive = true;
    queue.addBuffer([{ writable: 1 }]);
    expect(queue.kickIfNeeded()).toBe(true); // avail_event is 0: the first buffer kicks
    queue.addBuffer([{ writable: 1 }]);
    expect(queue.kickIfNeeded()).toBe(false); // the device has not caught up yet
    expect(q.pop()).not.toBeNull();
    expect(q.pop()).not.toBeNull();
    expect(q.pop()).toBeNull(); // empty: writes avail_event = 2
    expect(device.notifies).toEqual([0]);
    queue.addBuffer([{ writable: 1 }]);
    expect(queue.kickIfNeeded()).toBe(true);
  });

  it('the driver running avail idx more than a ring ahead is a device failure', () => {
    const { device, driver, queue } = setUp();
    queue.setAvailIndex(17);
    queue.kick();
    expect(driver.needsReset).toBe(true);
    expect(device.errors[0]).toMatch(/17 entries ahead/);
  });
});
