// The ACPI checksum rule (ACPI 6.5 section 5.2.5.3 for the RSDP, 5.2.6 for
// every other table): all bytes of the structure, checksum byte included,
// add up to zero modulo 256.

/** The checksum byte for `region`, computed while that byte is still zero. */
export function acpiChecksum(region: Uint8Array): number {
  const sum = region.reduce((total, byte) => (total + byte) & 0xff, 0);
  return (0x100 - sum) & 0xff;
}

/** Fixed-width ASCII for signatures and OEM ids; a programming error if `text` does not fit exactly. */
export function asciiField(text: string, width: number): Uint8Array {
  if (text.length !== width || !/^[\x20-\x7e]*$/.test(text)) {
    throw new Error(`ACPI field "${text}" must be ${width} printable ASCII characters`);
  }
  return new TextEncoder().encode(text);
}
