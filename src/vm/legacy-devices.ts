// The PC devices on the port I/O bus: the 8250 serial port (COM1, IRQ 4),
// the i8042 (only so that `reboot=k` resets the machine), a CMOS RTC (a
// guest reading 0xff from it waits a whole second at boot), the ACPI power
// device (how an ACPI guest powers off or resets, as the FADT tells it), and
// the ports Linux pokes at boot that need no device. The PIT, PIC and IOAPIC
// are KVM's in-kernel ones.
import { Bus } from '../bus/bus.js';
import { AcpiPower } from '../devices/legacy/acpi-power.js';
import type { CharBackend } from '../devices/char-backend.js';
import { CmosRtc } from '../devices/legacy/cmos-rtc.js';
import { HARMLESS_BOOT_PORTS, IgnoredPorts } from '../devices/legacy/ignored-ports.js';
import { I8042 } from '../devices/legacy/i8042.js';
import { ACPI_POWER_PORTS, CMOS_PORTS, COM1, I8042_PORTS } from '../devices/legacy/pc-ports.js';
import { SHARED_LSR, SHARED_MSR, Serial8250 } from '../devices/legacy/serial-8250.js';
import { Register } from '../devices/legacy/serial-registers.js';
import type { SharedPortValue } from '../vcpu/vcpu-thread.js';
import type { VmFd } from '../kvm/vm-fd.js';
import { IrqfdLine } from './irq-line.js';

export interface LegacyDevices {
  readonly pio: Bus;
  readonly serial?: Serial8250;
  /**
   * The port reads the vCPU workers answer themselves, from bytes the UART
   * keeps up to date: its line and modem status registers, read before every
   * console byte, so a boot log costs no round trip to the main thread per
   * character (docs/architecture.md, "Reads answered in the worker").
   */
  readonly workerAnsweredReads: { sharedBytes?: Uint8Array; sharedPortValues: SharedPortValue[] };
  close(): void;
}

/**
 * The port I/O bus with the legacy devices on it. `onReset` is called when
 * the guest resets the machine (i8042 or ACPI reset register), `onPowerOff`
 * when it enters ACPI S5; either may be called more than once.
 */
export function createLegacyDevices(
  vm: VmFd, serialBackend: CharBackend | undefined, onReset: () => void, onPowerOff: () => void,
): LegacyDevices {
  const pio = new Bus('port I/O', 'pio');
  const lines: IrqfdLine[] = [];
  let serial: Serial8250 | undefined;
  let workerAnsweredReads: LegacyDevices['workerAnsweredReads'] = { sharedPortValues: [] };

  if (serialBackend) {
    const registers = new Uint8Array(new SharedArrayBuffer(2));
    const line = new IrqfdLine(vm, COM1.irq);
    lines.push(line);
    serial = new Serial8250({ backend: serialBackend, interrupt: line, sharedRegisters: registers });
    pio.register(COM1.base, COM1.size, serial, 'serial 8250 (COM1)');
    workerAnsweredReads = {
      sharedBytes: registers,
      sharedPortValues: [
        { port: COM1.base + Register.LineStatus, sharedByteIndex: SHARED_LSR },
        { port: COM1.base + Register.ModemStatus, sharedByteIndex: SHARED_MSR },
      ],
    };
  }
  // IRQ 1 carries the controller's answers for the (absent) keyboard, so
  // that Linux's atkbd gets its NAKs at once instead of waiting them out.
  const keyboardLine = new IrqfdLine(vm, I8042_PORTS.keyboardIrq);
  lines.push(keyboardLine);
  pio.register(I8042_PORTS.base, I8042_PORTS.size, new I8042({ onReset, keyboardInterrupt: keyboardLine }), 'i8042');
  pio.register(CMOS_PORTS.base, CMOS_PORTS.size, new CmosRtc(), 'CMOS RTC');
  pio.register(ACPI_POWER_PORTS.base, ACPI_POWER_PORTS.size, new AcpiPower({ onPowerOff, onReset }), 'ACPI power');
  const ignored = new IgnoredPorts();
  for (const range of HARMLESS_BOOT_PORTS) {
    pio.register(range.base, range.size, ignored, `ignored port 0x${range.base.toString(16)}`);
  }

  return {
    pio, serial, workerAnsweredReads,
    close: () => lines.forEach((line) => line.close()),
  };
}
