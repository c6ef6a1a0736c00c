// The Differentiated System Description Table (ACPI 6.5 section 5.2.11.1):
// the AML namespace the guest enumerates devices from. In ASL it reads:
//
//   DefinitionBlock ("", "DSDT", 2, "TSVMM ", "TSVMDSDT", 1) {
//     Scope (\_SB) {
//       Device (RTC) {                       // the CMOS clock, always there
//         Name (_HID, EisaId ("PNP0B00"))    // AT-compatible real-time clock
//         Name (_CRS, ResourceTemplate () {
//           IO (Decode16, 0x70, 0x70, 1, 2)
//         })
//       }
//       Device (COM1) {                      // only when the serial port is on
//         Name (_HID, EisaId ("PNP0501"))    // 16550A-compatible UART
//         Name (_UID, 0)
//         Name (_CRS, ResourceTemplate () {
//           IO (Decode16, 0x3F8, 0x3F8, 1, 8)
//           Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { 4 }
//         })
//       }
//       Device (V000) {                      // one per virtio-mmio slot
//         Name (_HID, "LNRO0005")            // drivers/virtio/virtio_mmio.c's ACPI id
//         Name (_UID, 0)
//         Name (_CRS, ResourceTemplate () {
//           Memory32Fixed (ReadWrite, 0xD0000000, 0x1000)
//           Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { 5 }
//         })
//       }
//     }
//     Name (_S5, Package () { 5, 0 })        // soft off: SLP_TYP for the sleep control register
//   }
//
// Why the serial port is here: in hardware-reduced mode Linux numbers no
// ISA IRQs (arch/x86/kernel/acpi/boot.c), so the 8250 driver's built-in
// "COM1 is IRQ 4" has no interrupt behind it; the kernel's PNP layer
// (CONFIG_PNP, 8250_pnp) takes the port from this entry and maps GSI 4
// properly. Likewise the virtio-mmio devices: `virtio_mmio.device=...:5`
// on the command line names IRQ 5, which such a kernel does not have, so
// with ACPI the devices must come from here. And the clock: without a PNP
// entry, the kernel registers its own rtc_cmos device with ISA IRQ 8, which
// does not exist in hardware-reduced mode, and the driver's probe fails
// (-EINVAL). Found through PNP with no interrupt listed, the driver takes
// it without an IRQ (drivers/rtc/rtc-cmos.c, cmos_pnp_probe), which is
// the truth: tsvmm's clock raises none (devices/legacy/cmos-rtc.ts).
//
// Interrupts are edge-triggered and active high: tsvmm raises each one by
// signalling a KVM_IRQFD (src/vm/irq-line.ts) without a resample fd, which
// KVM turns into a pulse on the IOAPIC pin (assert, then deassert), i.e. an
// edge; the virtio-mmio transport relies on edge semantics (one trigger() =
// one interrupt; mmio-transport.ts) and the MP table says the same (ISA
// interrupts, edge, active high). Described as level-triggered, the pin
// would lose interrupts: a pulse that arrives while the previous one awaits
// its EOI (Remote IRR set) has already ended by the EOI, so the IOAPIC never
// delivers it.
import { CMOS_PORTS, COM1 } from '../../../devices/legacy/pc-ports.js';
import { SLEEP_TYPE_SOFT_OFF } from '../../../devices/legacy/acpi-power.js';
import type { VirtioMmioSlot } from '../layout.js';
import {
  amlDevice, amlEisaId, amlInteger, amlName, amlPackage, amlScope, amlString, concatBytes, extendedInterrupt,
  ioPorts, memory32Fixed, resourceTemplate,
} from './aml.js';
import { buildSdt } from './sdt-header.js';

/** DSDT revision 2: AML integers are 64 bits wide (section 5.2.11.1). */
export const DSDT_REVISION = 2;
/** What Linux's virtio_mmio driver matches (virtio_mmio_acpi_match). */
export const VIRTIO_MMIO_ACPI_HID = 'LNRO0005';
/** PNP id of a 16550A-compatible serial port. */
export const SERIAL_PNP_ID = 'PNP0501';
/** PNP id of an AT-compatible CMOS real-time clock (what Linux's rtc_cmos matches). */
export const RTC_PNP_ID = 'PNP0B00';

const EDGE_ACTIVE_HIGH_EXCLUSIVE = { edge: true, activeLow: false, shared: false } as const;

/** What the DSDT describes besides the CPUs (those are in the MADT) and the clock (always there). */
export interface DsdtDevices {
  readonly virtioSlots: readonly VirtioMmioSlot[];
  /** The 8250 UART at COM1 is on. */
  readonly serial: boolean;
}

export function buildDsdt(devices: DsdtDevices): Uint8Array {
  const systemBus = [
    rtcDevice(),
    ...(devices.serial ? [serialDevice()] : []),
    ...devices.virtioSlots.map((slot, index) => virtioMmioDevice(slot, index)),
  ];
  return buildSdt('DSDT', DSDT_REVISION, concatBytes([
    // \_SB: the DSDT's terms are in the root scope, so the plain name says
    // it (and is what ASL compilers emit).
    amlScope('_SB_', systemBus),
    amlName('_S5_', amlPackage([amlInteger(SLEEP_TYPE_SOFT_OFF), amlInteger(0)])),
  ]));
}

/** Device names are 4 characters: "V" and the slot index in three digits (at most 19 slots). */
export function virtioDeviceName(index: number): string {
  return `V${index.toString().padStart(3, '0')}`;
}

function virtioMmioDevice(slot: VirtioMmioSlot, index: number): Uint8Array {
  return amlDevice(virtioDeviceName(index), [
    amlName('_HID', amlString(VIRTIO_MMIO_ACPI_HID)),
    amlName('_UID', amlInteger(index)),
    amlName('_CRS', resourceTemplate([
      memory32Fixed(slot.base, slot.size),
      extendedInterrupt(slot.irq, EDGE_ACTIVE_HIGH_EXCLUSIVE),
    ])),
  ]);
}

function serialDevice(): Uint8Array {
  return amlDevice('COM1', [
    amlName('_HID', amlEisaId(SERIAL_PNP_ID)),
    amlName('_UID', amlInteger(0)),
    amlName('_CRS', resourceTemplate([
      ioPorts(COM1.base, COM1.size),
      extendedInterrupt(COM1.irq, EDGE_ACTIVE_HIGH_EXCLUSIVE),
    ])),
  ]);
}

function rtcDevice(): Uint8Array {
  return amlDevice('RTC_', [
    amlName('_HID', amlEisaId(RTC_PNP_ID)),
    amlName('_CRS', resourceTemplate([ioPorts(CMOS_PORTS.base, CMOS_PORTS.size)])),
  ]);
}
