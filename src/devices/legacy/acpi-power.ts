// The ACPI power device: how a guest with ACPI powers off (and, optionally,
// resets) a hardware-reduced platform. The FADT points its SLEEP_CONTROL_REG,
// SLEEP_STATUS_REG and RESET_REG here (src/arch/x86_64/acpi/fadt.ts) and the
// DSDT's \_S5_ object gives the sleep type of "soft off"; Linux's `poweroff`
// then ends in acpi_hw_extended_sleep() (drivers/acpi/acpica/hwesleep.c):
//   1. write WAK_STS to the status register (clear any old wake),
//   2. write SLP_TYP = 5 | SLP_EN to the control register,
//   3. read the status register until WAK_STS is set again.
// The write in step 2 is the power button; step 3 spins until tsvmm has
// stopped the vCPUs. WAK_STS deliberately stays clear then: were the guest
// told it woke up, Linux would carry on from a failed power-off (init exits,
// "Attempted to kill init!" panic) and could print that before it is stopped.
//
// Registers, one byte each (ACPI 6.5 sections 4.8.3.7, 4.8.3.8 and 4.8.3.6):
//   offset 0  sleep control: SLP_TYP bits 2-4, SLP_EN bit 5 (write)
//   offset 1  sleep status: WAK_STS bit 7 (read; write 1 to clear)
//   offset 2  reset: writing RESET_VALUE resets the machine
import type { BusDevice } from '../../bus/bus.js';

/** Register offsets from the device's first port (ACPI_POWER_PORTS in pc-ports.ts). */
export const AcpiPowerRegister = { SleepControl: 0, SleepStatus: 1, Reset: 2 } as const;

/** Sleep control register fields (ACPI 6.5 Table 4.20). */
export const SLEEP_TYPE_SHIFT = 2;
export const SLEEP_TYPE_MASK = 0x1c;
export const SLEEP_ENABLE = 0x20;
/** Sleep status register: the platform woke up (ACPI 6.5 Table 4.21). */
export const WAKE_STATUS = 0x80;
/**
 * The SLP_TYP value of S5 ("soft off"), which the DSDT's \_S5_ package
 * hands to the guest. The value is the platform's choice; 5 mirrors the
 * state's name, as other hardware-reduced VMMs do.
 */
export const SLEEP_TYPE_SOFT_OFF = 5;
/** What the guest writes to the reset register (the FADT's RESET_VALUE). Any value would do. */
export const ACPI_RESET_VALUE = 0x01;

export interface AcpiPowerOptions {
  /** The guest asked for S5. Called again if the guest repeats the request. */
  onPowerOff: () => void;
  /** The guest wrote the reset value (Linux `reboot=a`). */
  onReset: () => void;
}

export class AcpiPower implements BusDevice {
  private readonly onPowerOff: () => void;
  private readonly onReset: () => void;
  /** WAK_STS: set when a sleep request returned at once (any state but S5, which this platform does not sleep in). */
  private wakeStatus = false;

  constructor(options: AcpiPowerOptions) {
    this.onPowerOff = options.onPowerOff;
    this.onReset = options.onReset;
  }

  read(offset: number, data: Uint8Array): void {
    // Each byte of a wider access reads the register at its own offset.
    data.forEach((_, i) => { data[i] = this.readRegister(offset + i); });
  }

  write(offset: number, data: Uint8Array): void {
    data.forEach((value, i) => this.writeRegister(offset + i, value));
  }

  private readRegister(register: number): number {
    // The control and reset registers are write-only in effect: SLP_EN
    // reads as 0 (Table 4.20), and nothing else there has a state.
    if (register === AcpiPowerRegister.SleepStatus) return this.wakeStatus ? WAKE_STATUS : 0;
    return 0;
  }

  private writeRegister(register: number, value: number): void {
    switch (register) {
      case AcpiPowerRegister.SleepControl:
        if ((value & SLEEP_ENABLE) === 0) return;
        if ((value & SLEEP_TYPE_MASK) >> SLEEP_TYPE_SHIFT === SLEEP_TYPE_SOFT_OFF) {
          this.onPowerOff();
        } else {
          // Only \_S5_ is offered, so this is a confused guest: rather than
          // leave it spinning on WAK_STS forever, wake it up at once.
          this.wakeStatus = true;
        }
        return;
      case AcpiPowerRegister.SleepStatus:
        if (value & WAKE_STATUS) this.wakeStatus = false; // write 1 to clear
        return;
      case AcpiPowerRegister.Reset:
        if (value === ACPI_RESET_VALUE) this.onReset();
        return;
      default:
        return;
    }
  }
}
