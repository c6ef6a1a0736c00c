import { describe, expect, it } from 'vitest';
import { VirtioConsole } from '../../../src/devices/virtio/console.js';
import { VIRTIO_F_VERSION_1 } from '../../../src/devices/virtio/device.js';
import { MmioRegister } from '../../../src/devices/virtio/mmio-transport.js';
import { RING_FEATURES } from '../../../src/devices/virtio/queue.js';
import { VIRTQ_DESC_F_NEXT, VirtioTestDriver } from '../../helpers/virtio-driver.js';
import { TestCharBackend } from './test-char-backend.js';

const RX = 0;
const TX = 1;
const text = (s: string) => Buffer.from(s, 'latin1');
const asText = (b: Uint8Array) => Buffer.from(b).toString('latin1');

function setUp(backend = new TestCharBackend(), options = {}) {
  const console = new VirtioConsole(backend, options);
  const driver = VirtioTestDriver.create(console, { memorySize: 2 << 20 });
  return { backend, console, driver, rx: driver.queue(RX), tx: driver.queue(TX) };
}

describe('virtio-console', () => {
  it('is device 3 with two queues, ring features only and a zero config space', () => {
    const { driver } = setUp();
    expect(driver.readRegister(MmioRegister.DeviceId)).toBe(3);
    expect(driver.readDeviceFeatures()).toBe(RING_FEATURES | VIRTIO_F_VERSION_1);
    expect([...driver.readConfig(0, 12)]).toEqual(new Array(12).fill(0));
    expect(driver.device.queueMaxSizes).toEqual([256, 256]);
  });

  it('writes guest output to the backend, in order, split or joined', () => {
    const { backend, tx, driver } = setUp();
    tx.addBuffer([{ readable: text('hello, ') }]);
    tx.addBuffer([{ readable: text('wor') }, { readable: text('ld') }]);
    tx.addBuffer([{ readable: text('!\n') }], { indirect: true });
    tx.kick();
    expect(backend.output).toBe('hello, world!\n');
    expect(tx.takeUsed().map((u) => u.length)).toEqual([0, 0, 0]);
    expect(driver.interrupts.count).toBe(1);
  });

  it('stops taking output while the backend is full and loses nothing', () => {
    const { backend, tx } = setUp(new TestCharBackend(2));
    const lines = Array.from({ length: 9 }, (_, i) => `line ${i}\n`);
    for (const line of lines) tx.addBuffer([{ readable: text(line) }]);
    tx.kick();
    // two writes fit, the second reports "full": the device stops there
    expect(backend.writes.length).toBe(2);
    expect(tx.takeUsed().length).toBe(2);
    tx.kick(); // a notification while blocked changes nothing
    expect(backend.writes.length).toBe(2);
    let drains = 0;
    while (backend.writes.length < lines.length) {
      backend.drain();
      drains++;
      expect(backend.writes.length).toBe(Math.min(2 + 2 * drains, lines.length));
    }
    expect(backend.output).toBe(lines.join(''));
    expect(tx.takeUsed().length).toBe(7);
    expect(tx.inFlightCount).toBe(0);
  });

  it('delivers input into the guest receive buffers, keeping what does not fit yet', () => {
    const { backend, rx, driver } = setUp();
    backend.type('hello'); // no buffers offered yet: kept
    expect(rx.takeUsed()).toEqual([]);
    rx.addBuffer([{ writable: 3 }]);
    rx.addBuffer([{ writable: 1 }, { writable: 1 }]);
    rx.addBuffer([{ writable: 64 }]);
    rx.kick();
    const used = rx.takeUsed();
    expect(used.map((u) => asText(u.bytes))).toEqual(['hel', 'lo']);
    expect(driver.interrupts.count).toBe(1);
    backend.type('ls\n'); // a buffer is waiting: delivered at once
    expect(rx.takeUsed().map((u) => asText(u.bytes))).toEqual(['ls\n']);
    expect(driver.interrupts.count).toBe(2);
  });

  it('keeps input typed before the driver is ready, up to its bound', () => {
    const backend = new TestCharBackend();
    const console = new VirtioConsole(backend, { maxPendingInput: 8 });
    backend.type('0123');
    backend.type('456789ab'); // 4 of these fit
    expect(console.droppedInputBytes).toBe(4);
    const driver = VirtioTestDriver.create(console, { memorySize: 1 << 20 });
    const rx = driver.queue(RX);
    rx.addBuffer([{ writable: 16 }]);
    rx.kick();
    expect(rx.takeUsed().map((u) => asText(u.bytes))).toEqual(['01234567']);
  });

  it('a malformed transmit chain sets DEVICE_NEEDS_RESET and stops the device until reset', () => {
    const { backend, tx, driver } = setUp();
    tx.writeDescriptor(0, { address: 0x10_0000, length: 4, flags: VIRTQ_DESC_F_NEXT, next: 0 });
    tx.publish(0);
    tx.kick();
    expect(driver.needsReset).toBe(true);
    expect(backend.writes).toEqual([]);
    backend.type('x'); // input after the failure is kept, not delivered
    driver.initialize();
    const rx = driver.queue(RX);
    rx.addBuffer([{ writable: 4 }]);
    rx.kick();
    expect(rx.takeUsed().map((u) => asText(u.bytes))).toEqual(['x']);
    driver.queue(TX).addBuffer([{ readable: text('ok') }]);
    driver.queue(TX).kick();
    expect(backend.output).toBe('ok');
  });
});
