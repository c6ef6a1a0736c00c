// The PS/2 controller (Intel 8042) with no keyboard or mouse behind it, kept
// for one job: resetting the machine. Linux's `reboot=k` (the way a tsvmm
// guest asks to stop) waits for the controller's input buffer to be empty
// (status bit 1 clear) and writes command 0xFE, "pulse the reset line", to
// port 0x64 (arch/x86/kernel/reboot.c, kb_wait() and BOOT_KBD). The few
// commands a driver uses to check the controller get their documented
// answers, so nothing waits for a reply that never comes; others are ignored.
//
// Placement: ports 0x60-0x64 as one 5-byte range (0x61-0x63 belong to other
// chips; KVM's in-kernel PIT answers 0x61), so offset 0 is the data port
// (0x60) and offset 4 the status/command port (0x64).
import type { BusDevice } from '../../bus/bus.js';

const DATA_PORT = 0;
const COMMAND_PORT = 4;

/** Status register bits. */
const STATUS_OUTPUT_FULL = 0x01; // a byte is waiting at the data port
const STATUS_SYSTEM_FLAG = 0x04; // the controller passed its self-test
const STATUS_LAST_WAS_COMMAND = 0x08;
const STATUS_NOT_INHIBITED = 0x10;
// Bit 1 (input buffer full) is always clear: commands are taken at once.

/** Commands (written to port 0x64). */
const READ_CONFIG = 0x20;
const WRITE_CONFIG = 0x60;
const DISABLE_AUX = 0xa7;
const ENABLE_AUX = 0xa8;
const SELF_TEST = 0xaa;
const KEYBOARD_INTERFACE_TEST = 0xab;
const DISABLE_KEYBOARD = 0xad;
const ENABLE_KEYBOARD = 0xae;
const WRITE_OUTPUT_PORT = 0xd1;

const SELF_TEST_PASSED = 0x55;
const INTERFACE_TEST_PASSED = 0x00;
/** Configuration byte bits. */
const CONFIG_KEYBOARD_DISABLED = 0x10;
const CONFIG_AUX_DISABLED = 0x20;
/** Keyboard interrupt on, system flag, scancode translation: what firmware leaves. */
const INITIAL_CONFIG = 0x45;
/** Output port bit 0 drives the CPU reset line (active low). */
const OUTPUT_PORT_RESET_RELEASED = 0x01;

export interface I8042Options {
  /**
   * The guest reset the machine. Linux retries up to 10 times while it waits
   * to die, so this can be called more than once.
   */
  onReset: () => void;
}

export class I8042 implements BusDevice {
  private readonly onReset: () => void;
  private readonly outputBuffer: number[] = [];
  private config = INITIAL_CONFIG;
  private lastWasCommand = false;
  /** A command that takes its parameter from the next data-port write. */
  private awaitingParameter: number | undefined;

  constructor(options: I8042Options) {
    this.onReset = options.onReset;
  }

  read(offset: number, data: Uint8Array): void {
    data.fill(0xff);
    if (offset === DATA_PORT) data[0] = this.outputBuffer.shift() ?? 0;
    else if (offset === COMMAND_PORT) data[0] = this.status();
  }

  write(offset: number, data: Uint8Array): void {
    if (offset === DATA_PORT) this.writeData(data[0]!);
    else if (offset === COMMAND_PORT) this.writeCommand(data[0]!);
  }

  private status(): number {
    let status = STATUS_SYSTEM_FLAG | STATUS_NOT_INHIBITED;
    if (this.outputBuffer.length > 0) status |= STATUS_OUTPUT_FULL;
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
        this.outputBuffer.push(this.config);
        break;
      case WRITE_CONFIG:
      case WRITE_OUTPUT_PORT:
        this.awaitingParameter = command;
        break;
      case SELF_TEST:
        this.outputBuffer.push(SELF_TEST_PASSED);
        break;
      case KEYBOARD_INTERFACE_TEST:
        this.outputBuffer.push(INTERFACE_TEST_PASSED);
        break;
      case DISABLE_KEYBOARD:
        this.config |= CONFIG_KEYBOARD_DISABLED;
        break;
      case ENABLE_KEYBOARD:
        this.config &= ~CONFIG_KEYBOARD_DISABLED;
        break;
      case DISABLE_AUX:
        this.config |= CONFIG_AUX_DISABLED;
        break;
      case ENABLE_AUX:
        this.config &= ~CONFIG_AUX_DISABLED;
        break;
      default:
        break; // Accepted and ignored.
    }
  }

  private writeData(value: number): void {
    this.lastWasCommand = false;
    const command = this.awaitingParameter;
    this.awaitingParameter = undefined;
    if (command === WRITE_CONFIG) this.config = value;
    // Some firmware resets by writing the output port with the reset line low.
    else if (command === WRITE_OUTPUT_PORT && (value & OUTPUT_PORT_RESET_RELEASED) === 0) this.onReset();
    // Otherwise the byte is for the keyboard, and there is none.
  }
}
