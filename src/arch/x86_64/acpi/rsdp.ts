// The Root System Description Pointer (ACPI 6.5 section 5.2.5.3, Table 5.3):
// the structure the guest finds first, pointing at the XSDT. Revision 2
// (ACPI 2.0 and later) with the 64-bit XSDT address; the 32-bit RSDT
// address stays 0, so the guest uses the XSDT (drivers/acpi/acpica/tbutils.c,
// acpi_tb_parse_root_table).
import { acpiChecksum, asciiField } from './checksum.js';
import { ACPI_OEM_ID } from './sdt-header.js';

export const RSDP_SIZE = 36;
/** The ACPI 1.0 part that the first checksum covers. */
export const RSDP_V1_SIZE = 20;
export const RSDP_REVISION = 2;

/** Field offsets (Table 5.3). */
export const RsdpOffset = {
  signature: 0, // "RSD PTR "
  checksum: 8, // over the first 20 bytes
  oemId: 9, // char[6]
  revision: 15,
  rsdtAddress: 16, // u32
  length: 20, // u32, the whole structure
  xsdtAddress: 24, // u64
  extendedChecksum: 32, // over all 36 bytes
} as const;

export function buildRsdp(xsdtAddress: number): Uint8Array {
  const rsdp = new Uint8Array(RSDP_SIZE);
  const view = new DataView(rsdp.buffer);
  rsdp.set(asciiField('RSD PTR ', 8), RsdpOffset.signature);
  rsdp.set(asciiField(ACPI_OEM_ID, 6), RsdpOffset.oemId);
  view.setUint8(RsdpOffset.revision, RSDP_REVISION);
  view.setUint32(RsdpOffset.length, RSDP_SIZE, true);
  view.setBigUint64(RsdpOffset.xsdtAddress, BigInt(xsdtAddress), true);
  // The first checksum first: the extended one covers it.
  view.setUint8(RsdpOffset.checksum, acpiChecksum(rsdp.subarray(0, RSDP_V1_SIZE)));
  view.setUint8(RsdpOffset.extendedChecksum, acpiChecksum(rsdp));
  return rsdp;
}
