// The header every ACPI table but the RSDP starts with (ACPI 6.5 section
// 5.2.6, Table 5.4), and the OEM identity tsvmm signs its tables with.
import { acpiChecksum, asciiField } from './checksum.js';

export const SDT_HEADER_SIZE = 36;

/** Field offsets in the 36-byte header (Table 5.4). */
export const SdtHeaderOffset = {
  signature: 0, // char[4]
  length: 4, // u32, header included
  revision: 8, // u8
  checksum: 9, // u8
  oemId: 10, // char[6]
  oemTableId: 16, // char[8]
  oemRevision: 24, // u32
  creatorId: 28, // char[4]
  creatorRevision: 32, // u32
} as const;

/** Who made the tables: the OEM id is also in the RSDP, so Linux prints "TSVMM" next to each table at boot. */
export const ACPI_OEM_ID = 'TSVMM ';
export const ACPI_OEM_REVISION = 1;
/** The "ASL compiler" id: tsvmm builds its tables (and its AML) itself. */
export const ACPI_CREATOR_ID = 'TSVM';
export const ACPI_CREATOR_REVISION = 1;

/**
 * A complete table: the header (signature, length, revision, OEM fields,
 * checksum) followed by `body`. The OEM table id is "TSVM" plus the
 * signature, e.g. "TSVMAPIC", so each table is named by what it is.
 */
export function buildSdt(signature: string, revision: number, body: Uint8Array): Uint8Array {
  const table = new Uint8Array(SDT_HEADER_SIZE + body.byteLength);
  const view = new DataView(table.buffer);
  table.set(asciiField(signature, 4), SdtHeaderOffset.signature);
  view.setUint32(SdtHeaderOffset.length, table.byteLength, true);
  view.setUint8(SdtHeaderOffset.revision, revision);
  table.set(asciiField(ACPI_OEM_ID, 6), SdtHeaderOffset.oemId);
  table.set(asciiField(`TSVM${signature}`, 8), SdtHeaderOffset.oemTableId);
  view.setUint32(SdtHeaderOffset.oemRevision, ACPI_OEM_REVISION, true);
  table.set(asciiField(ACPI_CREATOR_ID, 4), SdtHeaderOffset.creatorId);
  view.setUint32(SdtHeaderOffset.creatorRevision, ACPI_CREATOR_REVISION, true);
  table.set(body, SDT_HEADER_SIZE);
  view.setUint8(SdtHeaderOffset.checksum, acpiChecksum(table));
  return table;
}
