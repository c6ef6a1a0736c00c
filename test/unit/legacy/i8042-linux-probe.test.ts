// Linux's i8042 driver probing tsvmm's controller (the model of its port
// accesses is in linux-i8042-driver.ts). A controller that leaves a driver
// command unanswered costs the guest I8042_CTL_TIMEOUT polls of 50 us, half
// a second per wait, at boot; these tests hold the probe to zero such waits.
import { beforeEach, describe, expect, it } from 'vitest';
import { Bus } from '../../../src/bus/bus.js';
import { I8042 } from '../../../src/devices/legacy/i8042.js';
import { I8042_PORTS } from '../../../src/devices/legacy/pc-ports.js';
import { GuestLog } from '../../../src/log.js';
import { CountingInterrupt } from './fakes.js';
import { LinuxI8042Driver, type PortAccess } from './linux-i8042-driver.js';

let bus: Bus;
let keyboardInterrupt: CountingInterrupt;
let driver: LinuxI8042Driver;

beforeEach(() => {
  bus = new Bus('pio', 'pio');
  keyboardInterrupt = new CountingInterrupt();
  const i8042 = new I8042({ onReset: () => { throw new Error('no reset expected'); }, keyboardInterrupt, log: new GuestLog({ enabled: false }) });
  bus.register(I8042_PORTS.base, I8042_PORTS.size, i8042, 'i8042');
  driver = new LinuxI8042Driver(bus);
});

const inb = (port: number, value: number): PortAccess => ({ op: 'in', port, value });
const outb = (port: number, value: number): PortAccess => ({ op: 'out', port, value });

// Status values: 0x14 = system flag + not inhibited; +0x08 last write was a
// command; +0x01 a byte is waiting; +0x40 that byte is a time-out answer.
const IDLE = 0x14;
const IDLE_AFTER_COMMAND = 0x1c;
const ANSWER_AFTER_COMMAND = 0x1d;
const TIMEOUT_ANSWER = 0x55;
const TIMEOUT_ANSWER_AFTER_COMMAND = 0x5d;

describe("Linux's i8042 probe against tsvmm's controller", () => {
  it('makes exactly the port accesses written down from i8042.c, and every answer is the expected one', () => {
    driver.boot();
    expect(driver.trace).toEqual([
      // i8042_controller_check(): i8042_flush() finds nothing waiting.
      inb(0x64, IDLE),
      // i8042_controller_init(): CTR read twice until two reads agree...
      inb(0x64, IDLE), outb(0x64, 0x20), inb(0x64, ANSWER_AFTER_COMMAND), inb(0x60, 0x45),
      inb(0x64, IDLE_AFTER_COMMAND), outb(0x64, 0x20), inb(0x64, ANSWER_AFTER_COMMAND), inb(0x60, 0x45),
      // ...the keylock check (status bit 4 set: not locked)...
      inb(0x64, IDLE_AFTER_COMMAND),
      // ...CTR written back with the keyboard disabled and its interrupt off, then a flush.
      inb(0x64, IDLE_AFTER_COMMAND), outb(0x64, 0x60), inb(0x64, IDLE_AFTER_COMMAND), outb(0x60, 0x54),
      inb(0x64, IDLE),
      // i8042_check_aux(): flush; AUX_LOOP 0xD3 with 0x5a. A one-port
      // controller ignores 0xD3, so 0x5a goes to the keyboard port, which
      // answers 0xFE with the time-out bit: a byte, but not an AUX one
      // (status bit 5 clear), so the loop fails at once ("auxerr").
      inb(0x64, IDLE),
      inb(0x64, IDLE), outb(0x64, 0xd3), inb(0x64, IDLE_AFTER_COMMAND), outb(0x60, 0x5a),
      inb(0x64, TIMEOUT_ANSWER), inb(0x64, TIMEOUT_ANSWER),
      // AUX_TEST 0xA9 (ignored) reads the waiting 0xFE: not 0x00/0xFA/0xFF,
      // so the driver decides there is no AUX port.
      inb(0x64, TIMEOUT_ANSWER), outb(0x64, 0xa9), inb(0x64, TIMEOUT_ANSWER_AFTER_COMMAND), inb(0x60, 0xfe),
      // i8042_setup_kbd() -> i8042_enable_kbd_port(): keyboard and its interrupt on.
      inb(0x64, IDLE_AFTER_COMMAND), outb(0x64, 0x60), inb(0x64, IDLE_AFTER_COMMAND), outb(0x60, 0x45),
    ]);
  });

  it('needs no timed-out wait: the whole probe polls zero times (0.5 s per timed-out wait before)', () => {
    const result = driver.boot();
    expect(driver.timedOutWaits).toBe(0);
    expect(driver.polls).toBe(0);
    // Guest time: the one udelay(50) between the two CTR reads, nothing else.
    expect(driver.waitedUs).toBe(50);
    expect(result).toEqual({ aux: false, kbd: true, ctr: 0x45, messages: [] });
    expect(driver.inb(0x64) & 0x01).toBe(0); // nothing left behind for the keyboard driver
  });

  it("answers atkbd's commands to the absent keyboard with a NAK through IRQ 1, so it gives up without waiting", () => {
    driver.boot();
    const before = keyboardInterrupt.count;
    // ps2_command(GETID) sends 0xF2 (retried once after a NAK), then SETLEDS 0xED.
    for (const byte of [0xf2, 0xf2, 0xed, 0xed]) {
      expect(driver.kbdWrite(byte)).toBe(true);
      expect(keyboardInterrupt.count).toBeGreaterThan(before);
      // i8042_interrupt(): 0xFE (PS2_RET_NAK) flagged SERIO_TIMEOUT.
      expect(driver.interrupt()).toEqual({ data: 0xfe, timeout: true });
    }
    expect(driver.timedOutWaits).toBe(0);
    expect(driver.interrupt()).toBeUndefined();
  });

  it('raises IRQ 1 only while the configuration byte enables it', () => {
    driver.boot();
    driver.command([0x44], 0x1060); // keyboard interrupt off
    const before = keyboardInterrupt.count;
    driver.kbdWrite(0xf4);
    expect(keyboardInterrupt.count).toBe(before);
    driver.command([0x45], 0x1060); // on again, with the answer still waiting: raised now
    expect(keyboardInterrupt.count).toBe(before + 1);
  });
});
