// Addresses, sizes and register values as the kernel prints them and as
// tsvmm's messages and traces show them: 0x-prefixed hex. Every layer uses
// it, so it lives at the top of src/ and depends on nothing.

/** `0x` followed by the value in lower-case hex. */
export function hex(value: number | bigint): string {
  return `0x${value.toString(16)}`;
}
