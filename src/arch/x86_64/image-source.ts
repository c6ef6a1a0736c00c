// What the loaders read a kernel or an initramfs from: a file they read
// piece by piece, at the offsets they choose, so that each piece goes
// straight to its place in guest RAM and the parts never loaded (a vmlinux's
// symbols) are never read. The VM reads files (src/vm/image-file.ts).

/** A kernel or initramfs image, read by position. */
export interface ImageSource {
  /** The image's length in bytes. */
  readonly size: number;
  /**
   * Fills all of `target` with the image's bytes from `position` on, or
   * throws: an image that ends first is an error, never zeros.
   */
  readInto(target: Uint8Array, position: number): void;
}

/** Enough for the ELF64 header and a vmlinux's program headers, or a bzImage's setup header (which ends before 0x290). */
const HEAD_SIZE = 1024;

/** The image's first bytes (all of them when it is shorter): what tells its format and holds its headers. */
export function readHead(source: ImageSource): Uint8Array {
  const head = new Uint8Array(Math.min(source.size, HEAD_SIZE));
  source.readInto(head, 0);
  return head;
}

/**
 * `length` bytes from `position`: a view into `head` (the image's first
 * bytes, from readHead()) when it holds them, else read into a new buffer.
 * The caller has checked that they lie inside the image.
 */
export function readBytes(source: ImageSource, head: Uint8Array, position: number, length: number): Uint8Array {
  if (position + length <= head.byteLength) return head.subarray(position, position + length);
  const bytes = new Uint8Array(length);
  source.readInto(bytes, position);
  return bytes;
}
