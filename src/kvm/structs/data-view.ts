// A DataView over exactly the bytes of a Uint8Array (or Buffer, which may be
// a slice of a larger pooled ArrayBuffer: hence byteOffset).

export function dataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Throws when `bytes` is shorter than the struct it should hold. */
export function requireSize(bytes: Uint8Array, size: number, struct: string): void {
  if (bytes.byteLength < size) {
    throw new RangeError(`${struct} needs ${size} bytes, got a buffer of ${bytes.byteLength}`);
  }
}
