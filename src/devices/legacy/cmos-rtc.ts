// The CMOS real-time clock (Motorola MC146818, ports 0x70/0x71): just enough
// for a guest to read the date at boot. Linux reads it early
// (mach_get_cmos_time) and first waits for status A's "update in progress"
// bit to clear; on an empty port that bit reads as 1 (0xff) and the guest
// wastes a whole second at boot. So: the host's UTC time, in BCD, 24-hour
// mode, never updating, always valid. Writes to the clock are ignored (the
// guest's clock is the host's); the rest of the 128 bytes of CMOS RAM keeps
// what the guest stores there.
import type { BusDevice } from '../../bus/bus.js';

const INDEX_PORT = 0;
const DATA_PORT = 1;
/** Bit 7 of the index port disables NMIs on a PC; meaningless here. */
const INDEX_MASK = 0x7f;

/** Register indexes. */
export const RtcRegister = {
  Seconds: 0x00,
  SecondsAlarm: 0x01,
  Minutes: 0x02,
  MinutesAlarm: 0x03,
  Hours: 0x04,
  HoursAlarm: 0x05,
  DayOfWeek: 0x06,
  DayOfMonth: 0x07,
  Month: 0x08,
  Year: 0x09,
  StatusA: 0x0a,
  StatusB: 0x0b,
  StatusC: 0x0c,
  StatusD: 0x0d,
  Century: 0x32,
} as const;

/** Status A: 32.768 kHz time base, 1024 Hz periodic rate, UIP (bit 7) clear. */
const STATUS_A = 0x26;
/** Status B: bit 1 = 24-hour mode; bit 2 (binary) clear = BCD; no interrupts. */
const STATUS_B = 0x02;
/** Status C: no interrupt flags. */
const STATUS_C = 0x00;
/** Status D: bit 7 = valid RAM and time (the battery is fine). */
const STATUS_D = 0x80;

export interface CmosRtcOptions {
  /** The clock the guest sees (default: the host's). Tests pass a fixed one. */
  now?: () => Date;
}

export class CmosRtc implements BusDevice {
  private readonly now: () => Date;
  private readonly ram = new Uint8Array(128);
  private index = 0;

  constructor(options: CmosRtcOptions = {}) {
    this.now = options.now ?? (() => new Date());
  }

  read(offset: number, data: Uint8Array): void {
    data.fill(0xff); // The index port is write-only.
    if (offset === DATA_PORT) data[0] = this.readRegister(this.index);
  }

  write(offset: number, data: Uint8Array): void {
    const value = data[0]!;
    if (offset === INDEX_PORT) this.index = value & INDEX_MASK;
    else if (offset === DATA_PORT) this.writeRegister(this.index, value);
  }

  private readRegister(index: number): number {
    const time = this.now();
    switch (index) {
      case RtcRegister.Seconds:
        return bcd(time.getUTCSeconds());
      case RtcRegister.Minutes:
        return bcd(time.getUTCMinutes());
      case RtcRegister.Hours:
        return bcd(time.getUTCHours());
      case RtcRegister.DayOfWeek:
        return bcd(time.getUTCDay() + 1); // 1 = Sunday
      case RtcRegister.DayOfMonth:
        return bcd(time.getUTCDate());
      case RtcRegister.Month:
        return bcd(time.getUTCMonth() + 1);
      case RtcRegister.Year:
        return bcd(time.getUTCFullYear() % 100);
      case RtcRegister.Century:
        return bcd(Math.floor(time.getUTCFullYear() / 100));
      case RtcRegister.StatusA:
        return STATUS_A;
      case RtcRegister.StatusB:
        return STATUS_B;
      case RtcRegister.StatusC:
        return STATUS_C;
      case RtcRegister.StatusD:
        return STATUS_D;
      default:
        return this.ram[index]!;
    }
  }

  private writeRegister(index: number, value: number): void {
    const clockOrStatus = index <= RtcRegister.StatusD && !isAlarm(index);
    if (clockOrStatus || index === RtcRegister.Century) return;
    this.ram[index] = value;
  }
}

function isAlarm(index: number): boolean {
  return index === RtcRegister.SecondsAlarm || index === RtcRegister.MinutesAlarm || index === RtcRegister.HoursAlarm;
}

/** Binary-coded decimal: 59 -> 0x59. */
export function bcd(value: number): number {
  return (Math.floor(value / 10) << 4) | (value % 10);
}
