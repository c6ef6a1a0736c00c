// The Generic Address Structure (ACPI 6.5 section 5.2.3.2, Table 5.1): how
// the FADT points at a hardware register, here always a byte-wide I/O port.

export const GENERIC_ADDRESS_SIZE = 12;

/** Address space ids (Table 5.1). */
export const AddressSpace = { SystemMemory: 0, SystemIo: 1 } as const;
/** Access sizes (Table 5.1): 1 = byte access. */
export const AccessSize = { Undefined: 0, Byte: 1, Word: 2, DWord: 3, QWord: 4 } as const;

/**
 * A one-byte register at I/O `port`: 8 bits wide, at bit 0, accessed a byte
 * at a time. ACPICA derives the width of its in/out instruction from these
 * fields (drivers/acpi/acpica/hwregs.c), so they must say "byte".
 */
export function ioPortByteRegister(port: number): Uint8Array {
  const gas = new Uint8Array(GENERIC_ADDRESS_SIZE);
  const view = new DataView(gas.buffer);
  view.setUint8(0, AddressSpace.SystemIo);
  view.setUint8(1, 8); // register bit width
  view.setUint8(2, 0); // register bit offset
  view.setUint8(3, AccessSize.Byte);
  view.setBigUint64(4, BigInt(port), true);
  return gas;
}
