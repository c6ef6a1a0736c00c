import { beforeEach, describe, expect, it } from 'vitest';
import { Bus } from '../../../src/bus/bus.js';
import { OUTPUT_BACKLOG_LIMIT, RX_FIFO_CAPACITY, SHARED_LSR, SHARED_MSR, Serial8250 } from '../../../src/devices/legacy/serial-8250.js';
import { CountingInterrupt, RecordingBackend } from './fakes.js';

// Register offsets from COM1 (0x3f8), as the guest's driver uses them.
const RBR_THR = 0, IER = 1, IIR_FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7;
const COM1 = 0x3f8;

let backend: RecordingBackend;
let irq: CountingInterrupt;
let shared: Uint8Array;
let uart: Serial8250;
let bus: Bus;

beforeEach(() => {
  backend = new RecordingBackend();
  irq = new CountingInterrupt();
  shared = new Uint8Array(new SharedArrayBuffer(2));
  uart = new Serial8250({ backend, interrupt: irq, sharedRegisters: shared });
  bus = new Bus('pio', 'pio');
  bus.register(COM1, 8, uart, 'com1');
});

function inb(offset: number): number {
  const data = new Uint8Array(1);
  bus.read(COM1 + offset, data);
  return data[0]!;
}

function outb(offset: number, value: number): void {
  bus.write(COM1 + offset, Uint8Array.of(value));
}

describe('Serial8250 registers', () => {
  it('powers up idle: no interrupt, transmitter empty, modem lines up', () => {
    expect([inb(IER), inb(IIR_FCR), inb(LCR), inb(MCR), inb(LSR), inb(MSR), inb(SCR)]).toEqual([0x00, 0x01, 0x00, 0x00, 0x60, 0xb0, 0x00]);
    expect([...shared]).toEqual([0x60, 0xb0]);
    expect(irq.count).toBe(0);
  });

  it('maps the divisor latch over offsets 0 and 1 while LCR.DLAB is set', () => {
    outb(IER, 0x05);
    outb(LCR, 0x83); // DLAB + 8 data bits
    expect([inb(RBR_THR), inb(IER)]).toEqual([12, 0]); // power-on divisor: 9600 baud
    outb(RBR_THR, 0x01); // 115200 baud
    outb(IER, 0x00);
    expect([inb(RBR_THR), inb(IER), inb(LCR)]).toEqual([0x01, 0x00, 0x83]);
    expect(backend.written).toEqual([]); // DLL writes are not output
    outb(LCR, 0x03);
    expect(inb(IER)).toBe(0x05);
    outb(RBR_THR, 0x41);
    expect(backend.written).toEqual([0x41]);
  });

  it('keeps only the 4 IER bits a 16550A has (Linux probes with 0x0f and the XScale UUE bit)', () => {
    outb(IER, 0xff);
    expect(inb(IER)).toBe(0x0f);
    outb(IER, 0x40);
    expect(inb(IER)).toBe(0x00);
  });

  it('reports FIFOs in IIR bits 6-7 once FCR enables them, with no 16750 bit', () => {
    outb(IIR_FCR, 0x01);
    expect(inb(IIR_FCR)).toBe(0xc1);
    outb(IIR_FCR, 0x21); // the 64-byte FIFO bit of a 16750
    expect(inb(IIR_FCR)).toBe(0xc1);
    outb(IIR_FCR, 0x00);
    expect(inb(IIR_FCR)).toBe(0x01);
  });

  it('keeps the scratch register and the 5 MCR bits', () => {
    outb(SCR, 0xa5);
    outb(MCR, 0xff);
    expect([inb(SCR), inb(MCR)]).toEqual([0xa5, 0x1f]);
  });

  it('sends THR writes to the backend byte for byte', () => {
    for (const byte of Buffer.from('Linux version 6.12\r\n')) outb(RBR_THR, byte);
    expect(backend.text()).toBe('Linux version 6.12\r\n');
    expect(inb(LSR)).toBe(0x60);
  });
});

describe('Serial8250 receive', () => {
  it('queues input, sets LSR.DR (in the shared byte too) and hands it out in order', () => {
    outb(MCR, 0x08); // the driver listens: OUT2 routes the IRQ,
    outb(IER, 0x01); // and RDI enables it
    backend.type('ls\r');
    expect([inb(LSR), shared[SHARED_LSR]]).toEqual([0x61, 0x61]);
    expect([inb(RBR_THR), inb(RBR_THR), inb(RBR_THR)]).toEqual([0x6c, 0x73, 0x0d]);
    expect([inb(LSR), shared[SHARED_LSR]]).toEqual([0x60, 0x60]);
    expect(inb(RBR_THR)).toBe(0); // empty
  });

  it('raises the RX interrupt when enabled and reports it in IIR until drained', () => {
    outb(IIR_FCR, 0x01);
    outb(MCR, 0x08);
    backend.type('x');
    expect(irq.count).toBe(0); // RDI not enabled
    outb(IER, 0x01);
    expect(irq.count).toBe(1);
    expect(inb(IIR_FCR)).toBe(0xc4);
    expect(inb(IIR_FCR)).toBe(0xc4); // reading IIR does not clear RX data
    backend.type('y');
    expect(irq.count).toBe(1); // still pending: no new edge
    expect([inb(RBR_THR), inb(RBR_THR)]).toEqual([0x78, 0x79]);
    expect(inb(IIR_FCR)).toBe(0xc1);
    backend.type('z');
    expect(irq.count).toBe(2);
  });

  it('clears the receive FIFO on FCR "clear RX"', () => {
    outb(IIR_FCR, 0x01);
    outb(MCR, 0x08);
    outb(IER, 0x01);
    backend.type('abc');
    outb(IER, 0x00);
    outb(IIR_FCR, 0x03);
    expect([inb(LSR), inb(RBR_THR)]).toEqual([0x60, 0]);
  });

  it('holds input that arrives before the driver listens, so its start-up FIFO clear loses nothing', () => {
    backend.type('echo hi\n'); // piped stdin arrives at boot
    expect([inb(LSR), shared[SHARED_LSR]]).toEqual([0x60, 0x60]);
    outb(IER, 0x0f); // the driver's probe (autoconfig) tries every IER bit,
    outb(IER, 0x00);
    outb(MCR, 0x1a); // and loops back with OUT2 set
    outb(MCR, 0x00);
    outb(IIR_FCR, 0x07); // serial8250_do_startup: enable and clear the FIFOs,
    expect(inb(LSR) & 0x01).toBe(0);
    outb(MCR, 0x0b); // DTR | RTS | OUT2,
    expect(inb(LSR) & 0x01).toBe(0);
    outb(IER, 0x05); // then RLSI | RDI;
    outb(IIR_FCR, 0x01); // set_termios switches FIFO mode (a mode change
    outb(IIR_FCR, 0x81); // clears nothing here: see serial-8250.ts)
    expect(inb(IIR_FCR)).toBe(0xc4); // RX data available
    const read: number[] = [];
    while (inb(LSR) & 0x01) read.push(inb(RBR_THR));
    expect(Buffer.from(read).toString()).toBe('echo hi\n');
    expect(uart.droppedInputBytes).toBe(0);
  });

  it('drops input beyond the 64 KiB FIFO and counts it', () => {
    outb(MCR, 0x08);
    outb(IER, 0x01);
    const input = new Uint8Array(RX_FIFO_CAPACITY + 10).map((_, i) => i & 0xff);
    uart.receive(input);
    expect(uart.droppedInputBytes).toBe(10);
    const read = new Uint8Array(RX_FIFO_CAPACITY);
    for (let i = 0; i < read.length; i++) read[i] = inb(RBR_THR);
    expect(read).toEqual(input.subarray(0, RX_FIFO_CAPACITY));
    expect(inb(LSR) & 0x01).toBe(0);
  });
});

describe('Serial8250 transmit interrupts', () => {
  it('passes the start-up THRE test of Linux (serial8250_do_startup)', () => {
    outb(IIR_FCR, 0x01);
    outb(IER, 0x02); // IER = THRI
    expect(irq.count).toBe(1);
    const iir1 = inb(IIR_FCR);
    outb(IER, 0x00);
    outb(IER, 0x02);
    const iir = inb(IIR_FCR);
    outb(IER, 0x00);
    expect([iir1, iir]).toEqual([0xc2, 0xc2]); // THR empty both times: no UART_BUG_THRE
    expect(irq.count).toBe(2);
  });

  it('clears the THR-empty interrupt when IIR reports it, and raises it again after a THR write', () => {
    outb(IER, 0x02);
    expect(inb(IIR_FCR)).toBe(0x02);
    expect(inb(IIR_FCR)).toBe(0x01); // acknowledged by the read
    outb(RBR_THR, 0x61);
    expect(irq.count).toBe(2);
    expect(inb(IIR_FCR)).toBe(0x02);
  });

  it('raises one interrupt for a burst of THR writes while unacknowledged (the level stays high)', () => {
    outb(IER, 0x02);
    for (let i = 0; i < 16; i++) outb(RBR_THR, 0x30 + i);
    expect(irq.count).toBe(1);
    expect(backend.written).toHaveLength(16);
  });

  it('reports RX data before THR empty (16550 priority), and THR empty once RX is drained', () => {
    outb(MCR, 0x08);
    outb(IER, 0x03);
    backend.type('k');
    expect(inb(IIR_FCR)).toBe(0x04);
    expect(inb(RBR_THR)).toBe(0x6b);
    expect(inb(IIR_FCR)).toBe(0x02); // reading IIR as RX did not acknowledge THRI
    expect(inb(IIR_FCR)).toBe(0x01);
  });

  it('keeps queueing output when the backend is full, and shows THR busy past the backlog limit until it drains', () => {
    outb(IER, 0x02);
    inb(IIR_FCR); // acknowledge
    backend.full = true;
    for (let i = 0; i < OUTPUT_BACKLOG_LIMIT; i++) outb(RBR_THR, 0x2e);
    expect([inb(LSR), shared[SHARED_LSR]]).toEqual([0x60, 0x60]);
    const interruptsBefore = irq.count;
    outb(RBR_THR, 0x21); // one byte past the limit
    expect([inb(LSR), shared[SHARED_LSR]]).toEqual([0x00, 0x00]);
    expect(inb(IIR_FCR)).toBe(0x01); // no THR-empty interrupt while held
    outb(RBR_THR, 0x22); // the guest cannot be refused: still queued
    expect(backend.written).toHaveLength(OUTPUT_BACKLOG_LIMIT + 2);
    expect(backend.written.slice(-2)).toEqual([0x21, 0x22]);
    const heldInterrupts = irq.count;
    backend.drain();
    expect([inb(LSR), shared[SHARED_LSR]]).toEqual([0x60, 0x60]);
    expect(irq.count).toBe(heldInterrupts + 1);
    expect(heldInterrupts).toBe(interruptsBefore);
    expect(inb(IIR_FCR)).toBe(0x02);
  });
});

describe('Serial8250 loopback and modem status', () => {
  it('wires MCR outputs to MSR inputs and THR to RBR in loopback', () => {
    outb(MCR, 0x10 | 0x0f);
    expect([inb(MSR), shared[SHARED_MSR]]).toEqual([0xf0, 0xf0]);
    outb(MCR, 0x10 | 0x02); // loop + RTS
    expect(inb(MSR)).toBe(0x10); // CTS
    outb(MCR, 0x10 | 0x01); // loop + DTR
    expect(inb(MSR)).toBe(0x20); // DSR
    outb(RBR_THR, 0x55);
    expect(backend.written).toEqual([]);
    expect([inb(LSR), inb(RBR_THR)]).toEqual([0x61, 0x55]);
    outb(MCR, 0x0b);
    expect([inb(MSR), shared[SHARED_MSR]]).toEqual([0xb0, 0xb0]);
  });

  it('needs two bytes of shared registers', () => {
    expect(() => new Serial8250({ backend, interrupt: irq, sharedRegisters: new Uint8Array(1) })).toThrow(
      'Serial8250: sharedRegisters needs 2 bytes (LSR, MSR)',
    );
  });
});
