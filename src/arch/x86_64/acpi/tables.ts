// All of tsvmm's ACPI tables, written into the BIOS area at boot: the RSDP
// at ACPI_RSDP_START, then the XSDT, FADT, MADT and DSDT, each 16-byte
// aligned, up to ACPI_TABLES_END. The guest reaches them as
//   RSDP -> XSDT -> { FADT -> DSDT, MADT }
// and finds the RSDP through boot_params.acpi_rsdp_addr or by scanning.
import type { GuestMemory } from '../../../memory/guest-memory.js';
import { hex } from '../../../hex.js';
import { ACPI_RSDP_START, ACPI_TABLES_END, alignUp } from '../layout.js';
import { buildDsdt, type DsdtDevices } from './dsdt.js';
import { buildFadt, FADT_SIZE } from './fadt.js';
import { buildMadt } from './madt.js';
import { buildRsdp, RSDP_SIZE } from './rsdp.js';
import { buildXsdt } from './xsdt.js';

/** The XSDT lists the FADT and the MADT. */
const XSDT_ENTRY_COUNT = 2;

/** Tables start on 16-byte boundaries (the RSDP must; the others need not, but aligned reads are kinder). */
export const ACPI_TABLE_ALIGNMENT = 16;

export interface AcpiPlatform extends DsdtDevices {
  readonly cpuCount: number;
}

/** One ACPI table as written into guest memory. */
export interface PlacedAcpiTable {
  /** Its signature: 'RSD PTR ' for the RSDP, else 'XSDT', 'FACP' (the FADT), 'APIC' (the MADT) or 'DSDT'. */
  readonly signature: string;
  /** Guest physical address of its first byte. */
  readonly address: number;
  /** Its length in bytes. */
  readonly size: number;
}

/** Where writeAcpiTables() put the ACPI tables. */
export interface AcpiTables {
  /** What boot_params.acpi_rsdp_addr must say. */
  readonly rsdpAddress: number;
  /** Every table, RSDP first, in the order placed. */
  readonly tables: readonly PlacedAcpiTable[];
}

/** Builds the tables for `platform` and writes them to guest memory. */
export function writeAcpiTables(memory: GuestMemory, platform: AcpiPlatform): AcpiTables {
  // Addresses are known only once the sizes are, so the leaves come first:
  // DSDT and MADT, then the FADT (which points at the DSDT), then the XSDT.
  const dsdt = buildDsdt(platform);
  const madt = buildMadt(platform.cpuCount);
  let next = alignUp(ACPI_RSDP_START + RSDP_SIZE, ACPI_TABLE_ALIGNMENT);
  const place = (size: number) => {
    const address = next;
    next = alignUp(address + size, ACPI_TABLE_ALIGNMENT);
    return address;
  };
  const xsdtAddress = place(buildXsdt(new Array<number>(XSDT_ENTRY_COUNT).fill(0)).byteLength);
  const fadtAddress = place(FADT_SIZE);
  const madtAddress = place(madt.byteLength);
  const dsdtAddress = place(dsdt.byteLength);
  // Cannot happen within the vCPU and device limits (a few KiB of 128); a
  // check all the same, since running past 1 MiB would overwrite the kernel.
  if (next > ACPI_TABLES_END) throw new Error(`ACPI tables end at ${hex(next)}, past ${hex(ACPI_TABLES_END)}`);

  const placed = [
    { signature: 'RSD PTR ', address: ACPI_RSDP_START, bytes: buildRsdp(xsdtAddress) },
    { signature: 'XSDT', address: xsdtAddress, bytes: buildXsdt([fadtAddress, madtAddress]) },
    { signature: 'FACP', address: fadtAddress, bytes: buildFadt(dsdtAddress) },
    { signature: 'APIC', address: madtAddress, bytes: madt },
    { signature: 'DSDT', address: dsdtAddress, bytes: dsdt },
  ];
  for (const table of placed) memory.write(table.address, table.bytes);
  return {
    rsdpAddress: ACPI_RSDP_START,
    tables: placed.map(({ signature, address, bytes }) => ({ signature, address, size: bytes.byteLength })),
  };
}
