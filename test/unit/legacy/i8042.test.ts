import { beforeEach, describe, expect, it } from 'vitest';
import { Bus } from '../../../src/bus/bus.js';
import { I8042, I8042_OUTPUT_CAPACITY, I8042_OVERFLOW_KIND } from '../../../src/devices/legacy/i8042.js';
import { I8042_PORTS } from '../../../src/devices/legacy/pc-ports.js';
import { GuestLog } from '../../../src/log.js';

let resets: number;
let bus: Bus;

beforeEach(() => {
  resets = 0;
  bus = new Bus('pio', 'pio');
  bus.register(I8042_PORTS.base, I8042_PORTS.size, new I8042({ onReset: () => resets++, log: new GuestLog({ enabled: false }) }), 'i8042');
});

function inb(port: number): number {
  const data = new Uint8Array(1);
  bus.read(port, data);
  return data[0]!;
}

function outb(port: number, value: number): void {
  bus.write(port, Uint8Array.of(value));
}

describe('I8042', () => {
  it('reads as a controller with empty buffers (what kb_wait() polls for)', () => {
    expect(inb(0x64)).toBe(0x14); // system flag + not inhibited; input buffer (bit 1) empty
    expect(inb(0x64) & 0x02).toBe(0);
  });

  it('resets the machine on command 0xFE (Linux reboot=k)', () => {
    outb(0x64, 0xfe);
    expect(resets).toBe(1);
    expect(inb(0x64) & 0x02).toBe(0); // still accepting: Linux retries
    outb(0x64, 0xfe);
    expect(resets).toBe(2);
  });

  it('resets on any pulse command with bit 0 low, not on others', () => {
    outb(0x64, 0xff); // pulse nothing
    outb(0x64, 0xfd); // pulse line 1 only
    expect(resets).toBe(0);
    outb(0x64, 0xf0); // pulse all four lines, reset included
    expect(resets).toBe(1);
  });

  it('resets when the output port is written with the reset line low', () => {
    outb(0x64, 0xd1);
    outb(0x60, 0x03); // reset released, A20 on
    expect(resets).toBe(0);
    outb(0x64, 0xd1);
    outb(0x60, 0x02);
    expect(resets).toBe(1);
  });

  it('answers the self-tests and keeps the configuration byte', () => {
    outb(0x64, 0xaa);
    expect(inb(0x64) & 0x01).toBe(1); // output buffer full
    expect(inb(0x60)).toBe(0x55);
    expect(inb(0x64) & 0x01).toBe(0);
    outb(0x64, 0xab);
    expect(inb(0x60)).toBe(0x00);
    outb(0x64, 0x20);
    expect(inb(0x60)).toBe(0x45);
    outb(0x64, 0x60);
    outb(0x60, 0x47);
    outb(0x64, 0xad); // disable keyboard: config bit 4
    outb(0x64, 0x20);
    expect(inb(0x60)).toBe(0x57);
  });

  it('tracks whether the last write was a command (status bit 3)', () => {
    outb(0x64, 0xc0); // unknown: accepted and ignored
    expect(inb(0x64)).toBe(0x1c);
    outb(0x60, 0xf4); // a byte for a keyboard that is not there
    expect(inb(0x64) & 0x08).toBe(0);
    expect(resets).toBe(0);
  });

  it('answers a byte for the absent keyboard with 0xFE and the time-out bit, as a real controller does', () => {
    outb(0x60, 0xff); // keyboard reset
    expect(inb(0x64)).toBe(0x55); // byte waiting (bit 0), time-out (bit 6)
    expect(inb(0x60)).toBe(0xfe);
    expect(inb(0x64)).toBe(0x14); // the time-out bit goes with the byte
  });

  it('has no AUX port: the AUX commands are ignored, the loopback byte goes to the keyboard port', () => {
    outb(0x64, 0xa8); // enable AUX
    outb(0x64, 0x20);
    expect(inb(0x60)).toBe(0x45); // configuration byte unchanged
    outb(0x64, 0xa9); // AUX interface test: no answer of its own
    expect(inb(0x64) & 0x01).toBe(0);
    outb(0x64, 0xd3); // write AUX output buffer
    outb(0x60, 0x5a);
    expect(inb(0x64) & 0x20).toBe(0); // not an AUX byte
    expect(inb(0x60)).toBe(0xfe);
  });

  it('reads back the output port it was given', () => {
    outb(0x64, 0xd0);
    expect(inb(0x60)).toBe(0x03); // reset released, A20 on
    outb(0x64, 0xd1);
    outb(0x60, 0x01);
    outb(0x64, 0xd0);
    expect(inb(0x60)).toBe(0x01);
    expect(resets).toBe(0);
  });

  it('holds at most I8042_OUTPUT_CAPACITY unread bytes, however many answers the guest asks for', () => {
    const log = new GuestLog({ enabled: false });
    const i8042 = new I8042({ onReset: () => resets++, log });
    const command = Uint8Array.of(0x20); // READ_CONFIG, as a `rep outsb` would repeat it
    for (let i = 0; i < 1_000_000; i++) i8042.write(4, command);
    expect(i8042.pendingOutput).toBe(I8042_OUTPUT_CAPACITY);
    expect(log.count(I8042_OVERFLOW_KIND)).toBe(1_000_000 - I8042_OUTPUT_CAPACITY);
    // Linux's i8042_flush() reads up to 16 bytes before it calls the controller broken: enough.
    const data = new Uint8Array(1);
    let read = 0;
    for (;;) {
      i8042.read(4, data);
      if ((data[0]! & 0x01) === 0) break;
      i8042.read(0, data);
      expect(data[0]).toBe(0x45);
      read++;
    }
    expect(read).toBeLessThanOrEqual(16);
  });

  it('reads 0xff between the two ports', () => {
    expect(inb(0x62)).toBe(0xff);
  });
});
