// The Multiple APIC Description Table (ACPI 6.5 section 5.2.12): the CPUs
// (one Processor Local APIC entry each) and the IOAPIC, the same facts the
// MP table (mptable.ts) gives a kernel without ACPI, with the same ids.
//
// No Interrupt Source Overrides. An override says "ISA IRQ n arrives on
// GSI m"; real PCs and QEMU (which reroutes GSI 0 to pin 2) declare one for
// the timer, IRQ 0 -> GSI 2. Here it would be wrong: KVM's default routing
// sends GSI n to IOAPIC pin n, the PIT included, which is why the MP table
// maps IRQ 0 to pin 0. And it would be useless: the FADT says hardware-reduced,
// in which mode Linux sets up neither the PIT/HPET timer nor the 8259s
// (acpi_generic_reduced_hw_init() in arch/x86/kernel/acpi/boot.c) and numbers
// no ISA IRQs at all (nr_legacy_irqs() is 0); it keeps time with the local
// APIC timer in TSC-deadline mode (cpuid.ts), and every interrupt a device
// raises is named, with its trigger mode, in that device's _CRS in the DSDT.
import { IOAPIC_START, LAPIC_START, checkCpuCount } from '../layout.js';
import { buildSdt, SDT_HEADER_SIZE } from './sdt-header.js';

/** ACPI 6.5 MADT revision (Table 5.19). */
export const MADT_REVISION = 6;
/** Local interrupt controller address (u32) and flags (u32) follow the header. */
export const MADT_FIXED_FIELDS_SIZE = 8;
/** Flags bit 0: the platform also has dual 8259s (KVM's irqchip does; hardware-reduced Linux leaves them idle). */
export const MADT_PCAT_COMPAT = 1;

/** Interrupt controller structure types and sizes (Table 5.21 and sections 5.2.12.2-3). */
export const MadtEntry = {
  LocalApic: { type: 0, size: 8 },
  IoApic: { type: 1, size: 12 },
} as const;
/** Processor Local APIC flags (Table 5.23): bit 0 enabled. */
export const LOCAL_APIC_ENABLED = 1;

export function buildMadt(cpuCount: number): Uint8Array {
  checkCpuCount(cpuCount);
  const body = new Uint8Array(MADT_FIXED_FIELDS_SIZE + cpuCount * MadtEntry.LocalApic.size + MadtEntry.IoApic.size);
  const view = new DataView(body.buffer);
  view.setUint32(0, LAPIC_START, true);
  view.setUint32(4, MADT_PCAT_COMPAT, true);

  let at = MADT_FIXED_FIELDS_SIZE;
  for (let cpu = 0; cpu < cpuCount; cpu++) {
    view.setUint8(at, MadtEntry.LocalApic.type);
    view.setUint8(at + 1, MadtEntry.LocalApic.size);
    view.setUint8(at + 2, cpu); // ACPI processor UID
    view.setUint8(at + 3, cpu); // APIC id = vCPU index, as cpuid.ts reports it
    view.setUint32(at + 4, LOCAL_APIC_ENABLED, true);
    at += MadtEntry.LocalApic.size;
  }
  view.setUint8(at, MadtEntry.IoApic.type);
  view.setUint8(at + 1, MadtEntry.IoApic.size);
  view.setUint8(at + 2, ioapicId(cpuCount));
  view.setUint32(at + 4, IOAPIC_START, true); // byte at + 3 is reserved
  view.setUint32(at + 8, 0, true); // global system interrupt base: pin n is GSI n
  return buildSdt('APIC', MADT_REVISION, body);
}

/** The IOAPIC takes the first id after the CPUs', as in the MP table. */
export function ioapicId(cpuCount: number): number {
  return cpuCount;
}
