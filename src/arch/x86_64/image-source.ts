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
