// The PS/2 controller (Intel 8042), kept for one job: resetting the machine.
// Linux's `reboot=k` (the way a tsvmm guest asks to stop) waits for the
// controller's input buffer to be empty (status bit 1 clear) and writes
// command 0xFE, "pulse the reset line", to port 0x64
// (arch/x86/kernel/reboot.c, kb_wait() and BOOT_KBD).
//
// What it presents: a controller with one port (the keyboard's) and no
// keyboard plugged in. No mouse port, because tsvmm has no pointing device
// to offer and a mouse port costs a guest dearly: Linux's i8042 driver
// (drivers/input/serio/i8042.c, i8042_check_aux()) accepts an AUX port only
// after a loopback byte comes back through IRQ 12, waiting 250 ms for it,
// and then a mouse driver probes a mouse that is not there. Without the AUX
// commands (0xA7-0xA9, 0xD3, 0xD4; ignored here, as any unknown command) the
// driver decides in two commands that there is no AUX port: the loopback
// byte after 0xD3 goes to the keyboard port and comes back as a keyboard
// byte, not an AUX one ("auxerr"), and 0xA9 then reads a non-zero answer.
// The keyboard port answers every byte the way a real controller does when
// no keyboard clocks it in: 0xFE with the time-out bit set, so atkbd gets a
// NAK at once instead of waiting for an ACK.
// test/unit/legacy/i8042-linux-probe.test.ts walks Linux's probe through
// this device, port access by port access.
//
// Placement: ports 0x60-0x64 as one 5-byte range (0x61-0x63 belong to other
// chips; KVM's in-kernel PIT answers 0x61), so offset 0 is the data port
// (0x60) and offset 4 the status/command port (0x64).
import type { BusDevice } from '../../bus/bus.js';
import { guestLog, type GuestLog } from '../../log.js';
import type { InterruptLine } from '../interrupt-line.js';

const DATA_PORT = 0;
const COMMAND_PORT = 4;

/** Status register bits. */
const STATUS_OUTPUT_FULL = 0x01; // a byte is waiting at the data port
const STATUS_SYSTEM_FLAG = 0x04; // the controller passed its self-test
const STATUS_LAST_WAS_COMMAND = 0x08;
const STATUS_NOT_INHIBITED = 0x10;
const STATUS_TIMEOUT = 0x40; // the byte at the data port reports a device that did not answer
// Bit 1 (input buffer full) is always clear: commands are taken at once.

/** Commands (written to port 0x64). */
const READ_CONFIG = 0x20;
const WRITE_CONFIG = 0x60;
const SELF_TEST = 0xaa;
const KEYBOARD_INTERFACE_TEST = 0xab;
const DISABLE_KEYBOARD = 0xad;
const ENABLE_KEYBOARD = 0xae;
const READ_OUTPUT_PORT = 0xd0;
const WRITE_OUTPUT_PORT = 0xd1;

const SELF_TEST_PASSED = 0x55;
const INTERFACE_TEST_PASSED = 0x00;
/** What the controller returns for a byte the keyboard did not take (a PS/2 "resend"). */
const NO_DEVICE_ANSWER = 0xfe;
/** Configuration byte bits. */
const CONFIG_KEYBOARD_INTERRUPT = 0x01;
const CONFIG_KEYBOARD_DISABLED = 0x10;
/** Keyboard interrupt on, system flag, scancode translation: what firmware leaves. */
const INITIAL_CONFIG = 0x45;
/** Output port bit 0 drives the CPU reset line (active low); bit 1 is the A20 gate. */
const OUTPUT_PORT_RESET_RELEASED = 0x01;
const INITIAL_OUTPUT_PORT = 0x03;

/**
 * Bytes the data port can hold unread. A real 8042 holds one and makes the
 * next answer wait until the host reads it; a queue keeps that order without
 * stalling, and the cap keeps a guest that never reads (a `rep outsb` of
 * READ_CONFIG) from growing it. 16 is Linux's I8042_BUFFER_SIZE
 * (drivers/input/serio/i8042.h): i8042_flush() reads at most that many bytes
 * before it declares the controller broken, so a longer queue could make a
 * guest give up on the controller.
 */
export const I8042_OUTPUT_CAPACITY = 16;

/** What the guest log calls a byte dropped from the full output queue. */
export const I8042_OVERFLOW_KIND = 'i8042: output buffer full';

export interface I8042Options {
  /**
   * The guest reset the machine. Linux retries up to 10 times while it waits
   * to die, so this can be called more than once.
   */
  onReset: () => void;
  /**
   * IRQ 1, raised when a byte arrives at the data port while the
   * configuration byte enables the keyboard interrupt. Optional: nothing in
   * Linux's probe waits for it, but atkbd's commands to the absent keyboard
   * get their NAK through it (without it each waits 200 ms, in the
   * background).
   */
  keyboardInterrupt?: InterruptLine;
  /** Where guest mistakes are reported (default: the process's guest log). */
  log?: GuestLog;
}

interface OutputByte {
  value: number;
  /** Status bits that come with this byte (STATUS_TIMEOUT). */
  status: number;
}

export class I8042 implements BusDevice {
  private readonly onReset: () => void;
  private readonly keyboardInterrupt: InterruptLine | undefined;
  private readonly log: GuestLog;
  private readonly output: OutputByte[] = [];
  private config = INITIAL_CONFIG;
  private outputPort = INITIAL_OUTPUT_PORT;
  private lastWasCommand = false;
  /** A command that takes its parameter from the next data-port write. */
  private awaitingParameter: number | undefined;

  constructor(options: I8042Options) {
    this.onReset = options.onReset;
    this.keyboardInterrupt = options.keyboardInterrupt;
    this.log = options.log ?? guestLog;
  }

  /** Bytes waiting at the data port (for tests). */
  get pendingOutput(): number {
    return this.output.length;
  }

  read(offset: number, data: Uint8Array): void {
    data.fill(0xff);
    if (offset === DATA_PORT) {
      data[0] = this.output.shift()?.value ?? 0;
      // The next byte moves into the output register: a new edge on IRQ 1.
      if (this.output.length > 0) this.interruptIfEnabled();
    } else if (offset === COMMAND_PORT) {
      data[0] = this.status();
    }
  }

  write(offset: number, data: Uint8Array): void {
    if (offset === DATA_PORT) this.writeData(data[0]!);
    else if (offset === COMMAND_PORT) this.writeCommand(data[0]!);
  }

  private status(): number {
    let status = STATUS_SYSTEM_FLAG | STATUS_NOT_INHIBITED;
    const head = this.output[0];
    if (head !== undefined) status |= STATUS_OUTPUT_FULL | head.status;
    if (this.lastWasCommand) status |= STATUS_LAST_WAS_COMMAND;
    return status;
  }

  private writeCommand(command: number): void {
    this.lastWasCommand = true;
    this.awaitingParameter = undefined;
    // 0xF0-0xFF pulse the output-port lines whose bit is 0 in the low
    // nibble; bit 0 is the reset line, so 0xFE is "reset the CPU".
    if ((command & 0xf0) === 0xf0) {
      if ((command & 0x01) === 0) this.onReset();
      return;
    }
    switch (command) {
      case READ_CONFIG:
        this.answer(this.config);
        break;
      case WRITE_CONFIG:
      case WRITE_OUTPUT_PORT:
        this.awaitingParameter = command;
        break;
      case SELF_TEST:
        this.answer(SELF_TEST_PASSED);
        break;
      case KEYBOARD_INTERFACE_TEST:
        this.answer(INTERFACE_TEST_PASSED);
        break;
      case DISABLE_KEYBOARD:
        this.config |= CONFIG_KEYBOARD_DISABLED;
        break;
      case ENABLE_KEYBOARD:
        this.config &= ~CONFIG_KEYBOARD_DISABLED;
        break;
      case READ_OUTPUT_PORT:
        this.answer(this.outputPort);
        break;
      default:
        // Unknown to a one-port controller, the AUX commands included (see
        // the top of the file): accepted and ignored, so a byte that
        // follows goes to the keyboard port.
        break;
    }
  }

  private writeData(value: number): void {
    this.lastWasCommand = false;
    const command = this.awaitingParameter;
    this.awaitingParameter = undefined;
    if (command === WRITE_CONFIG) {
      this.config = value;
      // Enabling the interrupt with a byte already waiting raises it now.
      if (this.output.length > 0) this.interruptIfEnabled();
    } else if (command === WRITE_OUTPUT_PORT) {
      this.outputPort = value;
      // Some firmware resets by writing the output port with the reset line low.
      if ((value & OUTPUT_PORT_RESET_RELEASED) === 0) this.onReset();
    } else {
      // A byte for the keyboard, and there is none to clock it in.
      this.answer(NO_DEVICE_ANSWER, STATUS_TIMEOUT);
    }
  }

  /** Queues a byte for the data port; IRQ 1 announces it if it is the only one. */
  private answer(value: number, status = 0): void {
    if (this.output.length >= I8042_OUTPUT_CAPACITY) {
      this.log.report(I8042_OVERFLOW_KIND, `dropped 0x${value.toString(16)} (the guest does not read port 0x60)`);
      return;
    }
    this.output.push({ value, status });
    if (this.output.length === 1) this.interruptIfEnabled();
  }

  private interruptIfEnabled(): void {
    if (this.config & CONFIG_KEYBOARD_INTERRUPT) this.keyboardInterrupt?.trigger();
  }
}
