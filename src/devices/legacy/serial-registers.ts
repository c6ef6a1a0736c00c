// 16550A register map: offsets from the port base and the bits tsvmm uses.
// Names follow the TI PC16550D datasheet and Linux's
// include/uapi/linux/serial_reg.h, so the driver code reads alongside.

/** Register offsets. Offsets 0 and 1 are the divisor latch while LCR.DLAB is set. */
export const Register = {
  /** Read: receive buffer (RBR). Write: transmit holding register (THR). DLAB: divisor latch low (DLL). */
  Data: 0,
  /** Interrupt enable (IER). DLAB: divisor latch high (DLM). */
  InterruptEnable: 1,
  /** Read: interrupt identification (IIR). Write: FIFO control (FCR). */
  InterruptId: 2,
  LineControl: 3,
  ModemControl: 4,
  LineStatus: 5,
  ModemStatus: 6,
  Scratch: 7,
} as const;

/** Register names by offset, for `--trace pio` (without DLAB: the divisor latch shares offsets 0 and 1). */
export const SERIAL_REGISTER_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(Register).map(([name, offset]) => [offset, name]));

/** IER: which conditions raise the interrupt. Only the low 4 bits exist on a 16550A. */
export const IER_RDI = 0x01; // received data available
export const IER_THRI = 0x02; // transmit holding register empty
const IER_RLSI = 0x04; // receiver line status
const IER_MSI = 0x08; // modem status
export const IER_MASK = 0x0f;

/** IIR: the highest-priority pending source (bit 0 set = none), FIFO state in bits 6-7. */
export const IIR_NO_INTERRUPT = 0x01;
const IIR_MODEM_STATUS = 0x00;
export const IIR_THR_EMPTY = 0x02;
export const IIR_RX_DATA = 0x04;
const IIR_RX_LINE_STATUS = 0x06;
export const IIR_FIFOS_ENABLED = 0xc0;

/** FCR (write-only). */
export const FCR_ENABLE_FIFO = 0x01;
export const FCR_CLEAR_RX = 0x02;
const FCR_CLEAR_TX = 0x04;

/** LCR: bit 7 maps the divisor latch over offsets 0 and 1. */
export const LCR_DLAB = 0x80;

/** MCR: modem outputs, and loopback (outputs fed back to the modem inputs, THR to RBR). */
export const MCR_DTR = 0x01;
export const MCR_RTS = 0x02;
export const MCR_OUT1 = 0x04;
export const MCR_OUT2 = 0x08;
export const MCR_LOOP = 0x10;
export const MCR_MASK = 0x1f;

/** LSR. */
export const LSR_DATA_READY = 0x01;
export const LSR_THR_EMPTY = 0x20; // THRE: the guest may write THR
export const LSR_TRANSMITTER_EMPTY = 0x40; // TEMT: THR and the shift register are empty

/** MSR: modem inputs (bits 4-7); bits 0-3 are "changed since last read" flags. */
export const MSR_CTS = 0x10;
export const MSR_DSR = 0x20;
export const MSR_RI = 0x40;
export const MSR_DCD = 0x80;

/** Power-on divisor: 12 = 9600 baud from the 1.8432 MHz clock (the speed means nothing here). */
export const DEFAULT_DIVISOR = 12;
