// The Extended System Description Table (ACPI 6.5 section 5.2.8): the list
// of the other tables' 64-bit addresses. The DSDT is not in it; the FADT
// points at the DSDT.
import { buildSdt } from './sdt-header.js';

export const XSDT_REVISION = 1;

export function buildXsdt(tableAddresses: readonly number[]): Uint8Array {
  const entries = new Uint8Array(8 * tableAddresses.length);
  const view = new DataView(entries.buffer);
  tableAddresses.forEach((address, i) => view.setBigUint64(8 * i, BigInt(address), true));
  return buildSdt('XSDT', XSDT_REVISION, entries);
}
