import { describe, expect, it } from 'vitest';
import { Bus } from '../../../src/bus/bus.js';
import { ByteFifo } from '../../../src/devices/legacy/byte-fifo.js';
import { HARMLESS_BOOT_PORTS, IgnoredPorts } from '../../../src/devices/legacy/ignored-ports.js';
import { ACPI_POWER_PORTS, CMOS_PORTS, COM1, I8042_PORTS } from '../../../src/devices/legacy/pc-ports.js';

describe('IgnoredPorts', () => {
  it('reads all ones and swallows writes on every listed range, next to the real devices', () => {
    const bus = new Bus('pio', 'pio');
    const ignored = new IgnoredPorts();
    for (const range of HARMLESS_BOOT_PORTS) bus.register(range.base, range.size, ignored, range.why);
    for (const device of [COM1, I8042_PORTS, CMOS_PORTS, ACPI_POWER_PORTS]) bus.register(device.base, device.size, ignored, 'device');
    const data = new Uint8Array(4);
    expect(bus.read(0xcf8, data)).toBe(true);
    expect([...data]).toEqual([0xff, 0xff, 0xff, 0xff]);
    expect(bus.write(0x80, Uint8Array.of(0x12))).toBe(true);
  });
});

describe('ByteFifo', () => {
  it('keeps order across the wrap-around and refuses bytes when full', () => {
    const fifo = new ByteFifo(4);
    for (const byte of [1, 2, 3]) fifo.push(byte);
    expect([fifo.shift(), fifo.shift()]).toEqual([1, 2]);
    expect([fifo.push(4), fifo.push(5), fifo.push(6), fifo.push(7)]).toEqual([true, true, true, false]);
    expect(fifo.isFull).toBe(true);
    expect([fifo.shift(), fifo.shift(), fifo.shift(), fifo.shift(), fifo.shift()]).toEqual([3, 4, 5, 6, undefined]);
    fifo.push(9);
    fifo.clear();
    expect([fifo.length, fifo.shift()]).toEqual([0, undefined]);
  });
});
