// Ports a booting Linux touches although nothing useful is behind them.
// Without a device each access would be an "unhandled port" log line; this
// one reads as an empty ISA bus (0xff, what real hardware returns) and drops
// writes, quietly. The list says why each range is there.
import type { BusDevice } from '../../bus/bus.js';

export class IgnoredPorts implements BusDevice {
  read(_offset: number, data: Uint8Array): void {
    data.fill(0xff);
  }

  write(): void {}
}

export interface IgnoredRange {
  readonly base: number;
  readonly size: number;
  readonly why: string;
}

export const HARMLESS_BOOT_PORTS: readonly IgnoredRange[] = [
  { base: 0x80, size: 1, why: 'POST code port; outb(0x80) is Linux\'s I/O delay' },
  { base: 0x87, size: 1, why: 'DMA page register (channel 0)' },
  { base: 0xed, size: 1, why: 'alternative I/O delay port (io_delay=0xed)' },
  { base: 0x2e8, size: 8, why: 'COM4: the 8250 driver probes it; 0xff means no UART' },
  { base: 0x2f8, size: 8, why: 'COM2: the 8250 driver probes it; 0xff means no UART' },
  { base: 0x3e8, size: 8, why: 'COM3: the 8250 driver probes it; 0xff means no UART' },
  { base: 0x4d0, size: 2, why: 'PIC edge/level control (ELCR), when not handled in the kernel' },
  { base: 0xcf8, size: 8, why: 'PCI configuration mechanism #1: all ones means no PCI bus' },
];
