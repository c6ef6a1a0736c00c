// A model of the port accesses Linux's i8042 driver makes at boot
// (drivers/input/serio/i8042.c of Linux 6.12, default parameters, x86, no
// PNP/ACPI description of the controller as with tsvmm: i8042_init() ->
// i8042_controller_check() -> i8042_probe()), written from the source so
// that a unit test can walk a device through it. Every port access is
// recorded; the wait loops count their polls the way the driver does
// (I8042_CTL_TIMEOUT polls of udelay(50) each), so the test can tell how
// much guest time the probe would spend without measuring any.
import type { Bus } from '../../../src/bus/bus.js';

export const I8042_DATA_REG = 0x60;
export const I8042_STATUS_REG = 0x64;
/** drivers/input/serio/i8042.h: polls before a wait gives up (each after udelay(50)). */
export const I8042_CTL_TIMEOUT = 10000;
export const POLL_DELAY_US = 50;
/** drivers/input/serio/i8042.h: bytes i8042_flush() reads before it calls the controller broken. */
export const I8042_BUFFER_SIZE = 16;
/** i8042_check_aux(): how long the driver waits for the loopback byte on IRQ 12. */
export const AUX_IRQ_TEST_WAIT_US = 250_000;

/** include/linux/i8042.h: status and control register bits, commands. */
export const STR = { OBF: 0x01, IBF: 0x02, KEYLOCK: 0x10, AUXDATA: 0x20, TIMEOUT: 0x40 } as const;
export const CTR = { KBDINT: 0x01, AUXINT: 0x02, KBDDIS: 0x10, AUXDIS: 0x20, XLATE: 0x40 } as const;
/** Command word: low byte = command, bits 8-11 = bytes returned, bits 12-15 = parameters. */
export const CMD = {
  CTL_RCTR: 0x0120, CTL_WCTR: 0x1060,
  AUX_DISABLE: 0x00a7, AUX_ENABLE: 0x00a8, AUX_TEST: 0x01a9, AUX_LOOP: 0x11d3,
} as const;

export interface PortAccess {
  op: 'in' | 'out';
  port: number;
  value: number;
}

export interface ProbeResult {
  /** i8042_check_aux() found an AUX port (serio1 would be registered). */
  aux: boolean;
  /** The keyboard port was set up (serio0). */
  kbd: boolean;
  /** The CTR the driver left in the controller. */
  ctr: number;
  /** Lines the driver would print with pr_err/pr_warn/pr_info. */
  messages: string[];
}

export class LinuxI8042Driver {
  readonly trace: PortAccess[] = [];
  /** Iterations of i8042_wait_read()/i8042_wait_write(), each one a udelay(50). */
  polls = 0;
  /** Waits that ran out (each costs I8042_CTL_TIMEOUT polls). */
  timedOutWaits = 0;
  /** Guest time in fixed delays (udelay() outside the wait loops, the AUX IRQ test), in microseconds. */
  delayUs = 0;
  private ctr = 0;

  constructor(private readonly bus: Bus) {}

  /** Guest time spent polling and waiting, in microseconds. */
  get waitedUs(): number {
    return this.polls * POLL_DELAY_US + this.delayUs;
  }

  inb(port: number): number {
    const data = new Uint8Array(1);
    this.bus.read(port, data);
    this.trace.push({ op: 'in', port, value: data[0]! });
    return data[0]!;
  }

  outb(port: number, value: number): void {
    this.bus.write(port, Uint8Array.of(value));
    this.trace.push({ op: 'out', port, value });
  }

  /** i8042_init() from the first port access to the end of i8042_probe(). */
  boot(): ProbeResult {
    const messages: string[] = [];
    if (this.flush() !== 0) return { aux: false, kbd: false, ctr: this.ctr, messages: ['No controller found'] };
    // i8042_probe(), i8042_reset at its default (only on S2RAM): no selftest.
    if (!this.controllerInit(messages)) return { aux: false, kbd: false, ctr: this.ctr, messages };
    const aux = this.checkAux(); // i8042_setup_aux(); a MUX check would follow a success
    const kbd = this.enableKbdPort(messages); // i8042_setup_kbd()
    return { aux, kbd, ctr: this.ctr, messages };
  }

  /** i8042_kbd_write(): a byte for the keyboard (what atkbd's ps2_command sends). */
  kbdWrite(byte: number): boolean {
    if (!this.waitWrite()) return false;
    this.outb(I8042_DATA_REG, byte);
    return true;
  }

  /** i8042_interrupt() up to handing the byte to serio: the byte and its SERIO_TIMEOUT flag. */
  interrupt(): { data: number; timeout: boolean } | undefined {
    const str = this.inb(I8042_STATUS_REG);
    if ((str & STR.OBF) === 0) return undefined;
    const data = this.inb(I8042_DATA_REG);
    return { data, timeout: (str & STR.TIMEOUT) !== 0 };
  }

  /** i8042_wait_read(): true when a byte is there before the poll limit. */
  private waitRead(): boolean {
    let i = 0;
    while ((~this.inb(I8042_STATUS_REG) & STR.OBF) && i < I8042_CTL_TIMEOUT) {
      this.polls++;
      i++;
    }
    if (i === I8042_CTL_TIMEOUT) this.timedOutWaits++;
    return i !== I8042_CTL_TIMEOUT;
  }

  /** i8042_wait_write(): true when the input buffer empties before the poll limit. */
  private waitWrite(): boolean {
    let i = 0;
    while ((this.inb(I8042_STATUS_REG) & STR.IBF) && i < I8042_CTL_TIMEOUT) {
      this.polls++;
      i++;
    }
    if (i === I8042_CTL_TIMEOUT) this.timedOutWaits++;
    return i !== I8042_CTL_TIMEOUT;
  }

  /** i8042_flush(): 0, or -EIO when more than I8042_BUFFER_SIZE bytes keep coming. */
  flush(): number {
    let count = 0;
    while (this.inb(I8042_STATUS_REG) & STR.OBF) {
      if (count++ >= I8042_BUFFER_SIZE) return -5;
      this.delayUs += POLL_DELAY_US; // the udelay(50) before each read
      this.inb(I8042_DATA_REG);
    }
    return 0;
  }

  /** __i8042_command(): 0 or -1; `param` carries parameters in and results out. */
  command(param: number[], command: number): number {
    if (!this.waitWrite()) return -1;
    this.outb(I8042_STATUS_REG, command & 0xff);
    for (let i = 0; i < ((command >> 12) & 0xf); i++) {
      if (!this.waitWrite()) return -1;
      this.outb(I8042_DATA_REG, param[i]!);
    }
    for (let i = 0; i < ((command >> 8) & 0xf); i++) {
      if (!this.waitRead()) return -1;
      if (command === CMD.AUX_LOOP && !(this.inb(I8042_STATUS_REG) & STR.AUXDATA)) return -1;
      param[i] = this.inb(I8042_DATA_REG);
    }
    return 0;
  }

  /** i8042_controller_init(). */
  private controllerInit(messages: string[]): boolean {
    const ctr = [0, 0];
    let n = 0;
    do {
      if (n >= 10) {
        messages.push('Unable to get stable CTR read');
        return false;
      }
      if (n !== 0) this.delayUs += POLL_DELAY_US; // udelay(50)
      const param = [0];
      if (this.command(param, CMD.CTL_RCTR)) {
        messages.push("Can't read CTR while initializing i8042");
        return false;
      }
      ctr[n++ % 2] = param[0]!;
    } while (n < 2 || ctr[0] !== ctr[1]);
    this.ctr = ctr[0]!;
    this.ctr |= CTR.KBDDIS;
    this.ctr &= ~CTR.KBDINT;
    if (~this.inb(I8042_STATUS_REG) & STR.KEYLOCK) messages.push('Warning: Keylock active');
    // A controller left in untranslated mode stays so (i8042_direct); nothing to write for it.
    if (this.command([this.ctr], CMD.CTL_WCTR)) {
      messages.push("Can't write CTR while initializing i8042");
      return false;
    }
    this.flush();
    return true;
  }

  /** i8042_check_aux(): true when the driver accepts an AUX port. */
  private checkAux(): boolean {
    this.flush();
    const param = [0x5a];
    const loop = this.command(param, CMD.AUX_LOOP);
    let auxLoopBroken = false;
    if (loop || param[0] !== 0x5a) {
      if (this.command(param, CMD.AUX_TEST) || (param[0] && param[0] !== 0xfa && param[0] !== 0xff)) return false;
      if (!loop) auxLoopBroken = true;
    }
    this.toggleAux(false); // a failure only warns
    if (!this.toggleAux(true)) return false;
    let ok = true;
    if (!auxLoopBroken) {
      // The IRQ test: enable the port, send 0xa5 through the loopback
      // without reading it, and wait up to 250 ms for IRQ 12 to bring it.
      // This model has no IRQ 12 handler, so it counts the wait.
      this.ctr = (this.ctr & ~CTR.AUXDIS) | CTR.AUXINT;
      ok = this.command([this.ctr], CMD.CTL_WCTR) === 0 && this.command([0xa5], CMD.AUX_LOOP & 0xf0ff) === 0;
      if (ok) {
        this.delayUs += AUX_IRQ_TEST_WAIT_US;
        this.flush();
        ok = false;
      }
    }
    this.ctr = (this.ctr | CTR.AUXDIS) & ~CTR.AUXINT;
    if (this.command([this.ctr], CMD.CTL_WCTR)) ok = false;
    return ok;
  }

  /** i8042_toggle_aux(). */
  private toggleAux(on: boolean): boolean {
    if (this.command([0], on ? CMD.AUX_ENABLE : CMD.AUX_DISABLE)) return false;
    for (let i = 0; i < 100; i++) {
      this.delayUs += POLL_DELAY_US; // udelay(50)
      const param = [0];
      if (this.command(param, CMD.CTL_RCTR)) return false;
      if (((param[0]! & CTR.AUXDIS) === 0) === on) return true;
    }
    return false;
  }

  /** i8042_enable_kbd_port(). */
  private enableKbdPort(messages: string[]): boolean {
    this.ctr &= ~CTR.KBDDIS;
    this.ctr |= CTR.KBDINT;
    if (this.command([this.ctr], CMD.CTL_WCTR)) {
      messages.push('Failed to enable KBD port');
      return false;
    }
    return true;
  }
}
