// The Intel MultiProcessor table: how a guest without ACPI learns how many
// CPUs it has and how interrupts reach them (Intel MultiProcessor
// Specification 1.4, chapter 4; Linux's view in
// arch/x86/include/asm/mpspec_def.h and arch/x86/kernel/mpparse.c).
// Layout at MPTABLE_START:
//   MP floating pointer (16 bytes, "_MP_")  -> points at
//   MP configuration table header (44 bytes, "PCMP"), followed by entries:
//     one processor per vCPU, the ISA bus, the IOAPIC, one I/O interrupt per
//     IOAPIC pin, and the two local interrupts (LINT0, LINT1).
import type { GuestMemory } from '../../memory/guest-memory.js';
import { IOAPIC_PIN_COUNT, IOAPIC_START, LAPIC_START, MPTABLE_START, checkCpuCount } from './layout.js';


const FLOATING_POINTER_SIZE = 16;
const TABLE_HEADER_SIZE = 44;
const PROCESSOR_ENTRY_SIZE = 20;
const SMALL_ENTRY_SIZE = 8; // bus, IOAPIC, I/O and local interrupt entries
const SPEC_REVISION_1_4 = 4;

// Entry types (mpspec_def.h).
const MP_PROCESSOR = 0;
const MP_BUS = 1;
const MP_IOAPIC = 2;
const MP_INTSRC = 3;
const MP_LINTSRC = 4;
const CPU_ENABLED = 1;
const CPU_BOOTPROCESSOR = 2;
const MPC_APIC_USABLE = 1;
// Interrupt types and flags.
const MP_INT = 0;
const MP_NMI = 1;
const MP_EXTINT = 3;
const MP_IRQPOL_ACTIVE_HIGH = 0x1;
const MP_IRQTRIG_EDGE = 0x4;
const MP_APIC_ALL = 0xff;

/** KVM's in-kernel local APIC and IOAPIC report these versions. */
const LAPIC_VERSION = 0x14;
const IOAPIC_VERSION = 0x11;
/** Processor entry CPU signature (family 6) and feature flags (FPU | APIC), informational for Linux. */
const CPU_SIGNATURE = 0x600;
const CPU_FEATURES = (1 << 0) | (1 << 9);
const ISA_BUS_ID = 0;

/** Entries in the configuration table for `cpuCount` vCPUs: n processors + bus + IOAPIC + 24 pins + 2 LINTs. */
export function mpTableEntryCount(cpuCount: number): number {
  return cpuCount + 2 + IOAPIC_PIN_COUNT + 2;
}

/** The complete table (floating pointer first) as it must appear at MPTABLE_START. */
export function buildMpTable(cpuCount: number): Uint8Array {
  checkCpuCount(cpuCount);
  const tableLength = TABLE_HEADER_SIZE + cpuCount * PROCESSOR_ENTRY_SIZE
    + (mpTableEntryCount(cpuCount) - cpuCount) * SMALL_ENTRY_SIZE;
  const bytes = new Uint8Array(FLOATING_POINTER_SIZE + tableLength);
  const view = new DataView(bytes.buffer);
  const ioapicId = cpuCount; // the first id after the CPUs'

  // Configuration table entries, after the header.
  let at = FLOATING_POINTER_SIZE + TABLE_HEADER_SIZE;
  for (let cpu = 0; cpu < cpuCount; cpu++) {
    view.setUint8(at, MP_PROCESSOR);
    view.setUint8(at + 1, cpu); // local APIC id = vCPU index (cpuid.ts reports the same)
    view.setUint8(at + 2, LAPIC_VERSION);
    view.setUint8(at + 3, CPU_ENABLED | (cpu === 0 ? CPU_BOOTPROCESSOR : 0));
    view.setUint32(at + 4, CPU_SIGNATURE, true);
    view.setUint32(at + 8, CPU_FEATURES, true);
    at += PROCESSOR_ENTRY_SIZE; // 8 reserved bytes stay zero
  }
  view.setUint8(at, MP_BUS);
  view.setUint8(at + 1, ISA_BUS_ID);
  bytes.set(ascii('ISA   '), at + 2);
  at += SMALL_ENTRY_SIZE;

  view.setUint8(at, MP_IOAPIC);
  view.setUint8(at + 1, ioapicId);
  view.setUint8(at + 2, IOAPIC_VERSION);
  view.setUint8(at + 3, MPC_APIC_USABLE);
  view.setUint32(at + 4, IOAPIC_START, true);
  at += SMALL_ENTRY_SIZE;

  // ISA IRQ n -> IOAPIC pin n, for every pin: KVM's default routing sends
  // GSI n to pin n. All edge-triggered, active high: ISA interrupts are, and
  // the virtio-mmio ones arrive through irqfd as edges too.
  for (let irq = 0; irq < IOAPIC_PIN_COUNT; irq++) {
    writeInterruptEntry(view, at, MP_INTSRC, MP_INT, irq, ioapicId, irq);
    at += SMALL_ENTRY_SIZE;
  }
  // Virtual wire, as lapic.ts programs it: the PIC on the boot CPU's LINT0, NMI on every CPU's LINT1.
  writeInterruptEntry(view, at, MP_LINTSRC, MP_EXTINT, 0, 0, 0);
  at += SMALL_ENTRY_SIZE;
  writeInterruptEntry(view, at, MP_LINTSRC, MP_NMI, 0, MP_APIC_ALL, 1);

  writeTableHeader(bytes, view, tableLength, mpTableEntryCount(cpuCount));
  writeFloatingPointer(bytes, view);
  return bytes;
}

/** Writes the table at MPTABLE_START; returns its size in bytes. */
export function writeMpTable(memory: GuestMemory, cpuCount: number): number {
  const table = buildMpTable(cpuCount);
  memory.write(MPTABLE_START, table);
  return table.byteLength;
}

function writeInterruptEntry(
  view: DataView, at: number, entryType: number, irqType: number, sourceIrq: number, destApic: number, destPin: number,
): void {
  view.setUint8(at, entryType);
  view.setUint8(at + 1, irqType);
  view.setUint16(at + 2, irqType === MP_INT ? MP_IRQPOL_ACTIVE_HIGH | MP_IRQTRIG_EDGE : 0, true);
  view.setUint8(at + 4, ISA_BUS_ID);
  view.setUint8(at + 5, sourceIrq);
  view.setUint8(at + 6, destApic);
  view.setUint8(at + 7, destPin);
}

function writeTableHeader(bytes: Uint8Array, view: DataView, tableLength: number, entryCount: number): void {
  const at = FLOATING_POINTER_SIZE;
  bytes.set(ascii('PCMP'), at);
  view.setUint16(at + 4, tableLength, true);
  view.setUint8(at + 6, SPEC_REVISION_1_4);
  bytes.set(ascii('TSVMM   '), at + 8); // OEM id, 8 characters
  bytes.set(ascii('MICROVM     '), at + 16); // product id, 12 characters
  view.setUint16(at + 34, entryCount, true);
  view.setUint32(at + 36, LAPIC_START, true);
  view.setUint8(at + 7, checksum(bytes.subarray(at, at + tableLength)));
}

/**
 * The floating pointer: physptr to the table right after it, length in
 * 16-byte units, feature bytes zero (a configuration table is present;
 * no IMCR, i.e. virtual wire mode).
 */
function writeFloatingPointer(bytes: Uint8Array, view: DataView): void {
  bytes.set(ascii('_MP_'), 0);
  view.setUint32(4, MPTABLE_START + FLOATING_POINTER_SIZE, true);
  view.setUint8(8, FLOATING_POINTER_SIZE / 16);
  view.setUint8(9, SPEC_REVISION_1_4);
  view.setUint8(10, checksum(bytes.subarray(0, FLOATING_POINTER_SIZE)));
}

/** The byte that makes `region` (with its checksum byte still zero) sum to 0 mod 256. */
function checksum(region: Uint8Array): number {
  const sum = region.reduce((total, b) => (total + b) & 0xff, 0);
  return (0x100 - sum) & 0xff;
}

function ascii(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}
