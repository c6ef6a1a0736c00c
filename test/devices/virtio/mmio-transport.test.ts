import { describe, expect, it } from 'vitest';
import { VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_RING_INDIRECT_DESC, VIRTIO_F_VERSION_1 } from '../../../src/devices/virtio/device.js';
import {
  DeviceStatus, MmioInterrupt, MmioLogKind, MmioRegister, TSVMM_VENDOR_ID, VIRTIO_MMIO_REGION_SIZE,
} from '../../../src/devices/virtio/mmio-transport.js';
import { GuestLog, LOG_LINES_PER_WINDOW } from '../../../src/log.js';
import { VirtioTestDriver } from '../../helpers/virtio-driver.js';
import { RecordingDevice } from './recording-device.js';

const { Acknowledge, Driver, FeaturesOk, DriverOk, DeviceNeedsReset } = DeviceStatus;

function uninitialized(device = new RecordingDevice()) {
  return { device, driver: VirtioTestDriver.create(device, { initialize: false, memorySize: 1 << 20 }) };
}

describe('virtio-mmio transport registers', () => {
  it('identifies itself as a version 2 device', () => {
    const { driver } = uninitialized(new RecordingDevice({ queues: [256, 64, 8] }));
    expect(driver.readRegister(MmioRegister.MagicValue)).toBe(0x74726976);
    expect(driver.readRegister(MmioRegister.Version)).toBe(2);
    expect(driver.readRegister(MmioRegister.DeviceId)).toBe(0x7f);
    expect(driver.readRegister(MmioRegister.VendorId)).toBe(TSVMM_VENDOR_ID);
    expect(Buffer.from(new Uint32Array([TSVMM_VENDOR_ID]).buffer).toString('latin1')).toBe('TSVM');
    const maxima = [0, 1, 2, 3].map((q) => {
      driver.writeRegister(MmioRegister.QueueSel, q);
      return driver.readRegister(MmioRegister.QueueNumMax);
    });
    expect(maxima).toEqual([256, 64, 8, 0]);
    expect(driver.readRegister(MmioRegister.ShmLenLow)).toBe(0xffff_ffff);
    expect(VIRTIO_MMIO_REGION_SIZE).toBe(0x200);
  });

  it('offers the device features plus VERSION_1, 32 bits at a time', () => {
    const { driver } = uninitialized(new RecordingDevice({ features: VIRTIO_F_RING_INDIRECT_DESC | (1n << 3n) }));
    driver.writeRegister(MmioRegister.DeviceFeaturesSel, 0);
    expect(driver.readRegister(MmioRegister.DeviceFeatures)).toBe((1 << 28) | (1 << 3));
    driver.writeRegister(MmioRegister.DeviceFeaturesSel, 1);
    expect(driver.readRegister(MmioRegister.DeviceFeatures)).toBe(1);
    driver.writeRegister(MmioRegister.DeviceFeaturesSel, 2);
    expect(driver.readRegister(MmioRegister.DeviceFeatures)).toBe(0);
  });

  it('forwards the config space at 0x100 with any access width', () => {
    const { device, driver } = uninitialized();
    expect([...driver.readConfig(2, 4)]).toEqual([3, 4, 5, 6]);
    expect([...driver.readConfig(7, 1)]).toEqual([8]);
    driver.writeConfig(1, Uint8Array.from([0xaa, 0xbb]));
    expect([...device.config]).toEqual([1, 0xaa, 0xbb, 4, 5, 6, 7, 8]);
  });

  it('ignores register accesses that are not 32 bits wide', () => {
    const { driver } = uninitialized();
    const data = Uint8Array.from([0xff, 0xff]);
    driver.transport.read(MmioRegister.MagicValue, data);
    expect([...data]).toEqual([0, 0]);
    driver.transport.write(MmioRegister.Status, Uint8Array.from([Acknowledge]));
    expect(driver.status).toBe(0);
    expect(driver.transportLog.length).toBe(2);
  });
});

describe('virtio-mmio status state machine', () => {
  it('walks ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK and activates the device', () => {
    const { device, driver } = uninitialized();
    driver.initialize();
    expect(driver.status).toBe(Acknowledge | Driver | FeaturesOk | DriverOk);
    expect(device.activations.length).toBe(1);
    const context = device.context!;
    expect(context.features).toBe(VIRTIO_F_VERSION_1 | VIRTIO_F_RING_INDIRECT_DESC | VIRTIO_F_RING_EVENT_IDX);
    expect(context.queues.length).toBe(2);
    expect(context.queues.map((q) => q?.size)).toEqual([16, 16]);
  });

  it('refuses FEATURES_OK without VERSION_1', () => {
    const { driver } = uninitialized();
    driver.addStatus(Acknowledge);
    driver.addStatus(Driver);
    driver.writeDriverFeatures(VIRTIO_F_RING_EVENT_IDX);
    driver.addStatus(FeaturesOk);
    expect(driver.status).toBe(Acknowledge | Driver);
    // and DRIVER_OK cannot follow
    driver.addStatus(DriverOk);
    expect(driver.status).toBe(Acknowledge | Driver);
    // a second try with VERSION_1 works
    driver.writeDriverFeatures(VIRTIO_F_VERSION_1);
    driver.addStatus(FeaturesOk);
    expect(driver.status).toBe(Acknowledge | Driver | FeaturesOk);
  });

  it('refuses FEATURES_OK when the driver accepts a feature it was not offered', () => {
    const { driver } = uninitialized(new RecordingDevice({ features: 0n }));
    driver.addStatus(Acknowledge | Driver);
    driver.writeDriverFeatures(VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX);
    driver.addStatus(FeaturesOk);
    expect(driver.status & FeaturesOk).toBe(0);
  });

  it('ignores status bits set out of order or cleared without a reset', () => {
    const { device, driver } = uninitialized();
    driver.writeRegister(MmioRegister.Status, Driver); // DRIVER before ACKNOWLEDGE
    expect(driver.status).toBe(0);
    // Several bits in one write are taken in order; features were never
    // negotiated (no VERSION_1), so FEATURES_OK and DRIVER_OK do not stick.
    driver.writeRegister(MmioRegister.Status, Acknowledge | Driver | FeaturesOk | DriverOk);
    expect(driver.status).toBe(Acknowledge | Driver);
    expect(device.activations.length).toBe(0);
    driver.writeRegister(MmioRegister.Status, Acknowledge); // clears DRIVER
    expect(driver.status).toBe(Acknowledge | Driver);
  });

  it('a late InterruptACK does not clear an interrupt raised after the driver read InterruptStatus', () => {
    // Guest writes are posted: the ACK a driver wrote right after reading
    // the status can reach the transport after the device raised again.
    const { driver } = uninitialized();
    driver.initialize();
    driver.queue(0).addBuffer([{ writable: 4 }]);
    driver.queue(0).kick();
    expect(driver.readRegister(MmioRegister.InterruptStatus)).toBe(MmioInterrupt.UsedBuffer);
    driver.queue(0).takeUsed(); // the handler consumes it, so the next one interrupts again
    const interruptsBefore = driver.interrupts.count;
    driver.queue(0).addBuffer([{ writable: 4 }]);
    driver.queue(0).kick(); // the device raises again before the ACK lands
    expect(driver.interrupts.count).toBe(interruptsBefore + 1);
    driver.writeRegister(MmioRegister.InterruptAck, MmioInterrupt.UsedBuffer);
    expect(driver.readRegister(MmioRegister.InterruptStatus)).toBe(MmioInterrupt.UsedBuffer);
    // An ACK after a read that saw everything clears it.
    driver.writeRegister(MmioRegister.InterruptAck, MmioInterrupt.UsedBuffer);
    expect(driver.readRegister(MmioRegister.InterruptStatus)).toBe(0);
  });

  it('writing 0 resets the device and the transport', () => {
    const { device, driver } = uninitialized();
    driver.initialize();
    driver.queue(0).addBuffer([{ writable: 4 }]);
    driver.queue(0).kick();
    expect(driver.acknowledgeInterrupt()).toBe(MmioInterrupt.UsedBuffer);
    driver.queue(0).addBuffer([{ writable: 4 }]);
    driver.queue(0).kick(); // leaves InterruptStatus set
    const oldContext = device.context!;
    driver.reset();
    expect(device.resets).toBe(2); // initialize() reset it once too
    expect(driver.status).toBe(0);
    expect(driver.readRegister(MmioRegister.InterruptStatus)).toBe(0);
    driver.writeRegister(MmioRegister.QueueSel, 0);
    expect(driver.readRegister(MmioRegister.QueueReady)).toBe(0);
    // the old context can no longer raise interrupts
    const before = driver.interrupts.count;
    oldContext.signalUsed(0);
    oldContext.fail('stale');
    expect(driver.interrupts.count).toBe(before);
    expect(driver.status).toBe(0);
    // notifications before DRIVER_OK are dropped
    driver.writeRegister(MmioRegister.QueueNotify, 0);
    expect(device.notifies).toEqual([0, 0]);
    // and the device can be brought up again
    driver.initialize();
    expect(device.activations.length).toBe(2);
    driver.queue(1).addBuffer([{ readable: Uint8Array.from([9]) }]);
    driver.queue(1).kick();
    expect(device.seen.at(-1)!.data).toEqual(Uint8Array.from([9]));
  });
});

describe('virtio-mmio queues and notifications', () => {
  it('QueueNotify and notifyQueue() both reach the device; unknown queues do not', () => {
    const { device, driver } = uninitialized();
    driver.initialize();
    driver.writeRegister(MmioRegister.QueueNotify, 1);
    driver.transport.notifyQueue(0);
    driver.transport.notifyQueue(7);
    expect(device.notifies).toEqual([1, 0]);
  });

  it('raises a used-buffer interrupt the driver acknowledges', () => {
    const { driver } = uninitialized();
    driver.initialize();
    driver.queue(0).addBuffer([{ writable: 8 }]);
    driver.queue(0).kick();
    expect(driver.interrupts.count).toBe(1);
    expect(driver.readRegister(MmioRegister.InterruptStatus)).toBe(MmioInterrupt.UsedBuffer);
    driver.writeRegister(MmioRegister.InterruptAck, MmioInterrupt.UsedBuffer);
    expect(driver.readRegister(MmioRegister.InterruptStatus)).toBe(0);
    const [used] = driver.queue(0).takeUsed();
    expect([...used!.bytes]).toEqual(new Array(8).fill(0x5a));
  });

  it('ignores queue register writes while the queue is ready', () => {
    const { device, driver } = uninitialized();
    driver.initialize();
    driver.writeRegister(MmioRegister.QueueSel, 0);
    driver.writeRegister(MmioRegister.QueueNum, 2);
    driver.writeRegister(MmioRegister.QueueDescLow, 0x10);
    expect(device.context!.queues[0]!.size).toBe(16);
    expect(driver.transportLog.length).toBe(2);
  });

  function failedSetup(program: (driver: VirtioTestDriver) => void) {
    const { device, driver } = uninitialized();
    driver.addStatus(Acknowledge | Driver);
    expect(driver.negotiate()).toBe(true);
    driver.setupQueue(1);
    program(driver);
    return { device, driver };
  }

  it.each([
    ['a size that is not a power of two', (d: VirtioTestDriver) => d.writeRegister(MmioRegister.QueueNum, 12)],
    ['a size above QueueNumMax', (d: VirtioTestDriver) => d.writeRegister(MmioRegister.QueueNum, 32)],
    ['a size of zero', (d: VirtioTestDriver) => d.writeRegister(MmioRegister.QueueNum, 0)],
    ['a descriptor table outside guest memory', (d: VirtioTestDriver) => d.writeRegister(MmioRegister.QueueDescHigh, 1)],
    ['a used ring that runs past the end of memory', (d: VirtioTestDriver) => d.writeRegister(MmioRegister.QueueDeviceLow, (1 << 20) - 64)],
    ['a misaligned available ring', (d: VirtioTestDriver) => d.writeRegister(MmioRegister.QueueDriverLow, 0x2001)],
    ['an address beyond 2^53', (d: VirtioTestDriver) => d.writeRegister(MmioRegister.QueueDescHigh, 0xffff_ffff)],
  ])('a queue set up with %s sets DEVICE_NEEDS_RESET', (_what, corrupt) => {
    const { driver } = failedSetup((d) => {
      d.writeRegister(MmioRegister.QueueSel, 0);
      d.writeRegister(MmioRegister.QueueNum, 16);
      d.writeRegister(MmioRegister.QueueDescLow, 0x2000);
      d.writeRegister(MmioRegister.QueueDriverLow, 0x3000);
      d.writeRegister(MmioRegister.QueueDeviceLow, 0x4000);
      corrupt(d);
      d.writeRegister(MmioRegister.QueueReady, 1);
    });
    expect(driver.status & DeviceNeedsReset).toBe(DeviceNeedsReset);
    expect(driver.readRegister(MmioRegister.QueueReady)).toBe(0);
    expect(driver.readRegister(MmioRegister.InterruptStatus)).toBe(MmioInterrupt.ConfigChange);
    expect(driver.interrupts.count).toBe(1);
    // the driver writes NEEDS_RESET back with its own bits; it stays set until reset
    driver.addStatus(0);
    expect(driver.status & DeviceNeedsReset).toBe(DeviceNeedsReset);
    driver.reset();
    expect(driver.status).toBe(0);
  });

  it('an error thrown by the device fails the device, not the VMM', () => {
    const { device, driver } = uninitialized();
    driver.initialize();
    device.throwOnNotify = new TypeError('a bug in the device');
    expect(() => driver.queue(0).kick()).not.toThrow();
    expect(driver.needsReset).toBe(true);
    expect(driver.transportLog.at(-1)).toContain('a bug in the device');
    // once failed, notifications are no longer delivered
    driver.queue(0).kick();
    expect(device.notifies).toEqual([0]);
  });
});

describe('virtio-mmio transport reports', () => {
  it('a guest mistake repeated 100,000 times costs a bounded number of stderr lines, and is counted every time', () => {
    const lines: string[] = [];
    let now = 0;
    const logger = new GuestLog({ enabled: true, write: (line) => lines.push(line), now: () => now });
    const device = new RecordingDevice();
    const driver = VirtioTestDriver.create(device, { initialize: false, memorySize: 1 << 20, transport: { logger, log: undefined } });
    const narrow = new Uint8Array(2);
    for (let i = 0; i < 100_000; i++) {
      driver.transport.read(MmioRegister.MagicValue, narrow);
      if (i === 50_000) now += 1000; // a second window: its own lines, and a report of what the first suppressed
    }
    expect(logger.count(MmioLogKind.BadAccess)).toBe(100_000);
    expect(lines.length).toBe(2 * LOG_LINES_PER_WINDOW + 1);
    expect(lines[0]).toBe('tsvmm: virtio-mmio: bad register access: recording device: ignored 2-byte read of register 0x0\n');
    expect(lines[LOG_LINES_PER_WINDOW]).toBe(`tsvmm: virtio-mmio: bad register access: ${50_001 - LOG_LINES_PER_WINDOW} more suppressed\n`);
    logger.flush();
    expect(lines.at(-1)).toBe(`tsvmm: virtio-mmio: bad register access: ${49_999 - LOG_LINES_PER_WINDOW} more suppressed\n`);
  });

  it('is quiet unless enabled, and still counts', () => {
    const lines: string[] = [];
    const logger = new GuestLog({ enabled: false, write: (line) => lines.push(line) });
    const driver = VirtioTestDriver.create(new RecordingDevice(), { initialize: false, memorySize: 1 << 20, transport: { logger, log: undefined } });
    driver.transport.write(MmioRegister.Status, Uint8Array.of(1));
    expect(lines).toEqual([]);
    expect(logger.counts()).toEqual(new Map([[MmioLogKind.BadAccess, 1]]));
  });
});
