// The Fixed ACPI Description Table (ACPI 6.5 section 5.2.9, Table 5.9),
// revision 6.5, for a hardware-reduced platform (section 4.1): no SCI, no
// PM1 event/control blocks, no PM timer, no FACS. What remains:
//   - X_DSDT: where the DSDT is;
//   - SLEEP_CONTROL_REG / SLEEP_STATUS_REG: the power device's registers,
//     through which the guest enters S5 (hardware-reduced ACPI has no PM1
//     control block, so Linux registers ACPI power-off only when these two
//     are set: acpi_sleep_state_supported() in drivers/acpi/sleep.c);
//   - RESET_REG / RESET_VALUE: the same device resets the machine;
//   - IAPC_BOOT_ARCH and CENTURY: which PC legacy hardware is there.
import { ACPI_POWER_PORTS } from '../../../devices/legacy/pc-ports.js';
import { ACPI_RESET_VALUE, AcpiPowerRegister } from '../../../devices/legacy/acpi-power.js';
import { RtcRegister } from '../../../devices/legacy/cmos-rtc.js';
import { asciiField } from './checksum.js';
import { ioPortByteRegister } from './generic-address.js';
import { buildSdt, SDT_HEADER_SIZE } from './sdt-header.js';

export const FADT_SIZE = 276;
export const FADT_REVISION = 6;
export const FADT_MINOR_REVISION = 5;

/** Field offsets in the table, header included (Table 5.9). */
export const FadtOffset = {
  firmwareCtrl: 36, // u32: FACS, none when hardware-reduced
  dsdt: 40, // u32: must be 0 when X_DSDT is set
  sciInt: 46, // u16
  smiCmd: 48, // u32
  century: 108, // u8: CMOS RTC index of the century
  iapcBootArch: 109, // u16
  flags: 112, // u32
  resetReg: 116, // GAS
  resetValue: 128, // u8
  minorVersion: 131, // u8
  xFirmwareCtrl: 132, // u64
  xDsdt: 140, // u64
  sleepControlReg: 244, // GAS
  sleepStatusReg: 256, // GAS
  hypervisorVendorIdentity: 268, // char[8]
} as const;

/** Fixed feature flags (Table 5.10). */
export const FadtFlag = {
  /** No fixed-feature power button (there is none). */
  powerButton: 1 << 4,
  /** No fixed-feature sleep button. */
  sleepButton: 1 << 5,
  /** RESET_REG is supported. */
  resetRegister: 1 << 10,
  hardwareReducedAcpi: 1 << 20,
} as const;

/**
 * IA-PC boot architecture flags (Table 5.11), and why only one is set:
 *  - LEGACY_DEVICES (bit 0) clear: there are no user-visible LPC/ISA devices
 *    beyond what the DSDT lists; set, Linux would also look for a PNPBIOS and
 *    register the i8237 DMA controller, which tsvmm does not have.
 *  - 8042 (bit 1) clear: tsvmm's i8042 exists only so `reboot=k` can pulse
 *    the reset line, which Linux does by port I/O whatever this flag says
 *    (arch/x86/kernel/reboot.c). Set, the i8042 driver would probe the
 *    controller and then fail to get IRQ 1, which hardware-reduced Linux
 *    does not number, so clear keeps a defconfig kernel's log quiet.
 *  - VGA Not Present (bit 2) set: there is no VGA; Linux must not probe it.
 *  - CMOS RTC Not Present (bit 5) clear: tsvmm emulates the RTC (cmos-rtc.ts)
 *    and Linux reads the date from it.
 */
export const IAPC_BOOT_ARCH_VGA_NOT_PRESENT = 1 << 2;

/** The FADT's own name for the hypervisor (informational; Linux does not read it). */
export const HYPERVISOR_VENDOR_IDENTITY = 'TSVMM   ';

export function buildFadt(dsdtAddress: number): Uint8Array {
  const table = new Uint8Array(FADT_SIZE);
  const view = new DataView(table.buffer);
  const port = (register: number) => ioPortByteRegister(ACPI_POWER_PORTS.base + register);

  view.setUint8(FadtOffset.century, RtcRegister.Century);
  view.setUint16(FadtOffset.iapcBootArch, IAPC_BOOT_ARCH_VGA_NOT_PRESENT, true);
  view.setUint32(FadtOffset.flags,
    FadtFlag.powerButton | FadtFlag.sleepButton | FadtFlag.resetRegister | FadtFlag.hardwareReducedAcpi, true);
  table.set(port(AcpiPowerRegister.Reset), FadtOffset.resetReg);
  view.setUint8(FadtOffset.resetValue, ACPI_RESET_VALUE);
  view.setUint8(FadtOffset.minorVersion, FADT_MINOR_REVISION);
  view.setBigUint64(FadtOffset.xDsdt, BigInt(dsdtAddress), true);
  table.set(port(AcpiPowerRegister.SleepControl), FadtOffset.sleepControlReg);
  table.set(port(AcpiPowerRegister.SleepStatus), FadtOffset.sleepStatusReg);
  table.set(asciiField(HYPERVISOR_VENDOR_IDENTITY, 8), FadtOffset.hypervisorVendorIdentity);
  return buildSdt('FACP', FADT_REVISION, table.subarray(SDT_HEADER_SIZE));
}
