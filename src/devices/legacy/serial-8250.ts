// A 16550A-compatible UART (the PC's COM1: ports 0x3f8-0x3ff, IRQ 4), the
// guest's first console (ttyS0). Register behaviour follows the TI PC16550D
// datasheet, with what Linux's 8250 driver (drivers/tty/serial/8250/) checks:
//
// - Probing (autoconfig): IER keeps only its low 4 bits; with FIFOs enabled
//   IIR reads 0xc1 when idle, which makes the driver's EFR and 16750 probes
//   fail and leaves a plain 16550A.
// - Start-up (serial8250_do_startup): enabling IER.THRI while THR is empty
//   must raise a THR-empty interrupt at once, and again after IER is cleared
//   and set; otherwise Linux flags the UART as buggy and polls it with a timer.
// - The console (serial8250_console_write) polls LSR for THRE|TEMT with
//   interrupts off; the tty layer writes up to 16 bytes per THR-empty
//   interrupt.
//
// Input reaches the receive FIFO only while the guest listens: receive
// interrupts enabled (IER.RDI) and routed to the interrupt controller
// (MCR.OUT2, which gates the UART's IRQ on a PC), not in loopback. Until then
// it waits in a host-side queue. Linux's driver clears the FIFO when it starts
// (serial8250_do_startup) and only then sets OUT2 and RDI, so input that came
// earlier (piped stdin arrives at once, at boot) would otherwise be lost.
// RDI alone is not enough: the driver's probe sets IER to 0x0f for a moment.
//
// Transmission is instantaneous: a THR write goes straight to the host
// backend and THR is empty again right away. The interrupt output is modelled
// as a level (IIR has a pending source) and `InterruptLine.trigger()` fires on
// its rising edge, which is what the edge-triggered ISA IRQ 4 sees on a PC.
// (On PCs MCR.OUT2 gates that output; like QEMU we do not gate it, so drivers
// that never set OUT2 work too.)
import type { BusDevice } from '../../bus/bus.js';
import type { CharBackend } from '../char-backend.js';
import type { InterruptLine } from '../interrupt-line.js';
import { ByteFifo } from './byte-fifo.js';
import * as R from './serial-registers.js';

/** Index of LSR / MSR in `sharedRegisters`, read by the vCPU worker without asking the device loop. */
export const SHARED_LSR = 0;
export const SHARED_MSR = 1;

/** Input beyond this, not yet read by the guest, is dropped (see receive()); the same bound holds for input held before the guest listens. */
export const RX_FIFO_CAPACITY = 64 * 1024;

/**
 * Output accepted while the backend reports full, beyond which LSR shows
 * THRE=0 (see transmitterReady()).
 */
export const OUTPUT_BACKLOG_LIMIT = 1024 * 1024;

export interface Serial8250Options {
  /** Where output goes and input comes from. */
  backend: CharBackend;
  /** IRQ 4 in a PC. */
  interrupt: InterruptLine;
  /**
   * At least 2 bytes, normally over a SharedArrayBuffer: [SHARED_LSR] and
   * [SHARED_MSR] always hold the current LSR and MSR, so the vCPU worker can
   * answer those reads itself (a polling console reads LSR once per byte).
   * This works because reading them has no side effect here: the UART never
   * sets LSR error bits or MSR delta bits, the only bits a read would clear.
   */
  sharedRegisters?: Uint8Array;
}

export class Serial8250 implements BusDevice {
  private readonly backend: CharBackend;
  private readonly interrupt: InterruptLine;
  private readonly shared: Uint8Array;
  private readonly rx = new ByteFifo(RX_FIFO_CAPACITY);
  /** Input that arrived while the guest was not listening: moved to `rx` once it is. */
  private readonly held = new ByteFifo(RX_FIFO_CAPACITY);

  private ier = 0;
  private lcr = 0;
  private mcr = 0;
  private scratch = 0;
  private divisor = R.DEFAULT_DIVISOR;
  private fifosEnabled = false;
  /** THR-empty interrupt latched: set when THR becomes empty, cleared by reading it from IIR or writing THR. */
  private thrEmptyPending = false;
  /** Bytes given to the backend since it last reported full (0 when it is not). */
  private backlog = 0;
  private backendFull = false;
  private interruptLineHigh = false;
  private dropped = 0;

  constructor(options: Serial8250Options) {
    this.backend = options.backend;
    this.interrupt = options.interrupt;
    this.shared = options.sharedRegisters ?? new Uint8Array(2);
    if (this.shared.length < 2) throw new RangeError('Serial8250: sharedRegisters needs 2 bytes (LSR, MSR)');
    this.backend.onInput((data) => this.receive(data));
    this.backend.onDrain(() => this.backendDrained());
    this.update();
  }

  /** Input bytes dropped because the guest had not read the previous 64 KiB. */
  get droppedInputBytes(): number {
    return this.dropped;
  }

  /**
   * Queues input for the guest. When the receive FIFO is full the new bytes
   * are dropped and counted: like a real UART's overrun, but without setting
   * LSR.OE, because LSR is answered from shared memory by the vCPU worker and
   * could not clear that bit on read. 64 KiB is far more than an interactive
   * user types ahead of a running guest.
   */
  receive(data: Uint8Array): void {
    const queue = this.listening() ? this.rx : this.held;
    for (const byte of data) {
      if (!queue.push(byte)) this.dropped++;
    }
    this.update();
  }

  registerName(offset: number): string | undefined {
    return R.SERIAL_REGISTER_NAMES.get(offset);
  }

  read(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) data[i] = this.readRegister(offset + i);
  }

  write(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) this.writeRegister(offset + i, data[i]!);
  }

  private readRegister(offset: number): number {
    const dlab = (this.lcr & R.LCR_DLAB) !== 0;
    switch (offset) {
      case R.Register.Data:
        return dlab ? this.divisor & 0xff : this.readReceiveBuffer();
      case R.Register.InterruptEnable:
        return dlab ? this.divisor >> 8 : this.ier;
      case R.Register.InterruptId:
        return this.readInterruptId();
      case R.Register.LineControl:
        return this.lcr;
      case R.Register.ModemControl:
        return this.mcr;
      case R.Register.LineStatus:
        return this.lineStatus();
      case R.Register.ModemStatus:
        return this.modemStatus();
      case R.Register.Scratch:
        return this.scratch;
      default:
        return 0xff;
    }
  }

  private writeRegister(offset: number, value: number): void {
    const dlab = (this.lcr & R.LCR_DLAB) !== 0;
    switch (offset) {
      case R.Register.Data:
        if (dlab) this.divisor = (this.divisor & 0xff00) | value;
        else this.transmit(value);
        break;
      case R.Register.InterruptEnable:
        if (dlab) this.divisor = (this.divisor & 0x00ff) | (value << 8);
        else this.writeInterruptEnable(value);
        break;
      case R.Register.InterruptId:
        this.writeFifoControl(value);
        break;
      case R.Register.LineControl:
        this.lcr = value;
        break;
      case R.Register.ModemControl:
        this.mcr = value & R.MCR_MASK;
        break;
      case R.Register.Scratch:
        this.scratch = value;
        break;
      // LSR and MSR writes are for factory testing; ignored.
    }
    if (this.held.length > 0 && this.listening()) this.releaseHeldInput();
    this.update();
  }

  /** See the top of this file. */
  private listening(): boolean {
    return (this.ier & R.IER_RDI) !== 0 && (this.mcr & (R.MCR_OUT2 | R.MCR_LOOP)) === R.MCR_OUT2;
  }

  private releaseHeldInput(): void {
    for (let byte = this.held.shift(); byte !== undefined; byte = this.held.shift()) {
      if (!this.rx.push(byte)) this.dropped++;
    }
  }

  private readReceiveBuffer(): number {
    const byte = this.rx.shift() ?? 0;
    this.update();
    return byte;
  }

  private readInterruptId(): number {
    const source = this.pendingSource();
    // Reading IIR acknowledges a THR-empty interrupt (datasheet table 4).
    if (source === R.IIR_THR_EMPTY) {
      this.thrEmptyPending = false;
      this.update();
    }
    return source | (this.fifosEnabled ? R.IIR_FIFOS_ENABLED : 0);
  }

  private transmit(byte: number): void {
    if (this.mcr & R.MCR_LOOP) {
      if (!this.rx.push(byte)) this.dropped++;
    } else if (!this.backend.write(Uint8Array.of(byte)) || this.backendFull) {
      this.backendFull = true;
      this.backlog++;
    }
    // The byte left at once: THR is empty again (and the interrupt latch with
    // it), unless the backlog is holding the transmitter.
    this.thrEmptyPending = this.transmitterReady();
  }

  private writeInterruptEnable(value: number): void {
    const enabledThri = value & R.IER_THRI & ~this.ier;
    this.ier = value & R.IER_MASK;
    // Enabling THRI while THR is empty raises the interrupt at once; Linux's
    // start-up test depends on it (see the top of this file).
    if (enabledThri) this.thrEmptyPending = this.transmitterReady();
    if (!(this.ier & R.IER_THRI)) this.thrEmptyPending = false;
  }

  private writeFifoControl(value: number): void {
    const enable = (value & R.FCR_ENABLE_FIFO) !== 0;
    // FCR_CLEAR_RX clears the receive FIFO; the transmit side has nothing to
    // clear: bytes leave immediately. The datasheet clears it on a FIFO mode
    // change too; we do not, on purpose: Linux switches modes in set_termios
    // right after it starts listening (see the top of this file), which would
    // lose input typed (or piped) ahead. It clears explicitly when it means to.
    if (value & R.FCR_CLEAR_RX) this.rx.clear();
    this.fifosEnabled = enable;
  }

  private backendDrained(): void {
    const wasHeld = !this.transmitterReady();
    this.backendFull = false;
    this.backlog = 0;
    // THR just became empty again: that is a THR-empty interrupt.
    if (wasHeld && this.ier & R.IER_THRI) this.thrEmptyPending = true;
    this.update();
  }

  /**
   * A THR write cannot fail, so the UART never refuses a byte: when the
   * backend is full, bytes keep queueing there (tty and file backends do not
   * lose data). Past OUTPUT_BACKLOG_LIMIT the UART reports THR busy (THRE=0),
   * so that a polling driver waits and an interrupt-driven one gets no
   * THR-empty interrupt until the backend drains. Linux's console waits up to
   * 10 ms per byte for THRE and then writes anyway, so a stuck terminal slows
   * the guest's printk down without ever blocking it.
   */
  private transmitterReady(): boolean {
    return this.backlog <= OUTPUT_BACKLOG_LIMIT;
  }

  private lineStatus(): number {
    let lsr = this.rx.length > 0 ? R.LSR_DATA_READY : 0;
    if (this.transmitterReady()) lsr |= R.LSR_THR_EMPTY | R.LSR_TRANSMITTER_EMPTY;
    return lsr;
  }

  private modemStatus(): number {
    if (!(this.mcr & R.MCR_LOOP)) {
      // Carrier, data set ready and clear to send: a cable with a host that is always there.
      return R.MSR_DCD | R.MSR_DSR | R.MSR_CTS;
    }
    // Loopback wires the modem outputs to the inputs.
    let msr = 0;
    if (this.mcr & R.MCR_RTS) msr |= R.MSR_CTS;
    if (this.mcr & R.MCR_DTR) msr |= R.MSR_DSR;
    if (this.mcr & R.MCR_OUT1) msr |= R.MSR_RI;
    if (this.mcr & R.MCR_OUT2) msr |= R.MSR_DCD;
    return msr;
  }

  /** The highest-priority enabled source (datasheet table 4), or IIR_NO_INTERRUPT. */
  private pendingSource(): number {
    if (this.ier & R.IER_RDI && this.rx.length > 0) return R.IIR_RX_DATA;
    if (this.ier & R.IER_THRI && this.thrEmptyPending) return R.IIR_THR_EMPTY;
    // Line-status and modem-status interrupts never happen: no errors, no modem line changes.
    return R.IIR_NO_INTERRUPT;
  }

  /** Publishes LSR/MSR for the worker and raises the interrupt on a rising edge. Called after every change. */
  private update(): void {
    Atomics.store(this.shared, SHARED_LSR, this.lineStatus());
    Atomics.store(this.shared, SHARED_MSR, this.modemStatus());
    const high = this.pendingSource() !== R.IIR_NO_INTERRUPT;
    if (high && !this.interruptLineHigh) this.interrupt.trigger();
    this.interruptLineHigh = high;
  }
}
