import { describe, expect, it } from 'vitest';
import { Bus } from '../../../src/bus/bus.js';
import { bcd, CmosRtc, RtcRegister } from '../../../src/devices/legacy/cmos-rtc.js';
import { CMOS_PORTS } from '../../../src/devices/legacy/pc-ports.js';

function rtcAt(iso: string) {
  const bus = new Bus('pio', 'pio');
  bus.register(CMOS_PORTS.base, CMOS_PORTS.size, new CmosRtc({ now: () => new Date(iso) }), 'rtc');
  const read = (index: number) => {
    bus.write(0x70, Uint8Array.of(index));
    const data = new Uint8Array(1);
    bus.read(0x71, data);
    return data[0]!;
  };
  const write = (index: number, value: number) => {
    bus.write(0x70, Uint8Array.of(index));
    bus.write(0x71, Uint8Array.of(value));
  };
  return { bus, read, write };
}

describe('CmosRtc', () => {
  it('reads the injected UTC time in BCD', () => {
    const { read } = rtcAt('2026-11-25T07:08:09Z'); // a Wednesday
    const registers = [0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32].map(read);
    expect(registers).toEqual([0x09, 0x08, 0x07, 0x04, 0x25, 0x11, 0x26, 0x20]);
  });

  it('uses 24-hour mode and Sunday = 1', () => {
    const { read } = rtcAt('1999-12-26T23:59:58Z'); // a Sunday
    expect([RtcRegister.Hours, RtcRegister.DayOfWeek, RtcRegister.Year, RtcRegister.Century].map(read)).toEqual([0x23, 0x01, 0x99, 0x19]);
  });

  it('reports status A without update-in-progress, B = 24h BCD, C = 0, D = valid', () => {
    const { read } = rtcAt('2026-01-01T00:00:00Z');
    expect([0x0a, 0x0b, 0x0c, 0x0d].map(read)).toEqual([0x26, 0x02, 0x00, 0x80]);
  });

  it('ignores the NMI-disable bit of the index', () => {
    const { read } = rtcAt('2026-11-25T07:08:09Z');
    expect(read(0x80 | RtcRegister.Minutes)).toBe(0x08);
  });

  it('ignores clock and status writes, keeps alarms and CMOS RAM', () => {
    const { read, write } = rtcAt('2026-11-25T07:08:09Z');
    write(RtcRegister.Seconds, 0x30);
    write(RtcRegister.StatusB, 0x06);
    write(RtcRegister.Century, 0x21);
    write(RtcRegister.MinutesAlarm, 0x15);
    write(0x40, 0xab);
    expect([RtcRegister.Seconds, RtcRegister.StatusB, RtcRegister.Century, RtcRegister.MinutesAlarm, 0x40, 0x41].map(read)).toEqual([
      0x09, 0x02, 0x20, 0x15, 0xab, 0x00,
    ]);
  });

  it('reads the write-only index port as 0xff', () => {
    const { bus } = rtcAt('2026-11-25T07:08:09Z');
    const data = new Uint8Array(1);
    bus.read(0x70, data);
    expect(data[0]).toBe(0xff);
  });

  it('encodes BCD', () => {
    expect([bcd(0), bcd(9), bcd(10), bcd(59), bcd(99)]).toEqual([0x00, 0x09, 0x10, 0x59, 0x99]);
  });
});
