// Copies between host buffers and guest memory at memcpy speed. Guest memory
// may be a SharedArrayBuffer, and V8 copies into or out of shared memory
// word by word only when source and destination have the same alignment
// modulo 8; otherwise it falls back to a byte loop, about ten times slower.
// Vsock payloads sit 44 bytes (4 mod 8) into their buffers, so that
// fallback would be the common case without the care taken here.

const WORD = 8;
const STAGE_SIZE = 64 * 1024;
/** Scratch space for re-aligning a copy (one device loop thread: no sharing issues). */
const stage = new Uint8Array(new ArrayBuffer(STAGE_SIZE + WORD));
/** Below this, a byte loop costs less than staging. */
const STAGE_THRESHOLD = 512;
/** Payloads below this do not take a 64 KiB pooled buffer. */
const SMALL_PAYLOAD = 4096;

function isShared(bytes: Uint8Array): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && bytes.buffer instanceof SharedArrayBuffer;
}

/** Copies all of `source` to the start of `target` (which must be at least as long). */
export function copyBytes(target: Uint8Array, source: Uint8Array): void {
  const aligned = ((target.byteOffset - source.byteOffset) & (WORD - 1)) === 0;
  if (aligned || source.byteLength < STAGE_THRESHOLD || (!isShared(target) && !isShared(source))) {
    target.set(source);
    return;
  }
  // Hop through a private buffer placed at the target's alignment: one plain
  // memcpy, then one aligned word copy.
  const shift = (target.byteOffset & (WORD - 1));
  for (let done = 0; done < source.byteLength; done += STAGE_SIZE) {
    const n = Math.min(STAGE_SIZE, source.byteLength - done);
    const staged = stage.subarray(shift, shift + n);
    staged.set(source.subarray(done, done + n));
    target.set(staged, done);
  }
}

/**
 * A new Buffer for `length` bytes whose address has the same alignment
 * modulo 8 as `like`, so copying from `like` needs no staging.
 */
export function allocAlignedLike(like: Uint8Array | undefined, length: number): Buffer {
  if (length < STAGE_THRESHOLD) return Buffer.allocUnsafe(length); // from Node's pool
  const shift = like === undefined ? 0 : like.byteOffset & (WORD - 1);
  return Buffer.allocUnsafeSlow(length + shift).subarray(shift, shift + length);
}

/** Copies a run of pieces into a list of target segments (e.g. an rx chain's writable views), in order. */
export class ScatterWriter {
  private index = 0;
  private offset = 0;

  constructor(private readonly targets: readonly Uint8Array[]) {}

  write(piece: Uint8Array): void {
    let at = 0;
    while (at < piece.byteLength) {
      const target = this.targets[this.index];
      if (target === undefined) throw new RangeError('ScatterWriter: more bytes than room');
      const n = Math.min(target.byteLength - this.offset, piece.byteLength - at);
      copyBytes(target.subarray(this.offset, this.offset + n), piece.subarray(at, at + n));
      at += n;
      this.offset += n;
      if (this.offset === target.byteLength) {
        this.index += 1;
        this.offset = 0;
      }
    }
  }
}

/** Copies segments (e.g. a tx chain's readable views) into one new Buffer, aligned like the first. */
export function gather(segments: readonly Uint8Array[], length: number): Buffer {
  const data = allocAlignedLike(segments[0], length);
  let at = 0;
  for (const segment of segments) {
    copyBytes(data.subarray(at, at + segment.byteLength), segment);
    at += segment.byteLength;
  }
  return data;
}

/**
 * Reusable buffers for guest -> host payloads. Allocating a fresh 64 KiB
 * Buffer per packet costs more in garbage collection than the copy itself;
 * a payload buffer comes back here once the socket write completed.
 */
export class PayloadPool {
  private readonly free: ArrayBuffer[] = [];

  constructor(private readonly bufferSize = 64 * 1024 + WORD, private readonly maxFree = 64) {}

  /** Copies `segments` (`length` bytes) into a pooled buffer aligned like the first segment. */
  gather(segments: readonly Uint8Array[], length: number): Buffer {
    // Small payloads come cheaper from Node's own pool; huge ones are rare.
    if (length < SMALL_PAYLOAD || length + WORD > this.bufferSize) return gather(segments, length);
    const backing = this.free.pop() ?? new ArrayBuffer(this.bufferSize);
    const shift = segments[0] === undefined ? 0 : segments[0].byteOffset & (WORD - 1);
    const data = Buffer.from(backing, shift, length);
    let at = 0;
    for (const segment of segments) {
      copyBytes(data.subarray(at, at + segment.byteLength), segment);
      at += segment.byteLength;
    }
    return data;
  }

  /** Gives back a buffer from gather() that nobody uses any more. */
  release(data: Buffer): void {
    if (data.buffer.byteLength === this.bufferSize && this.free.length < this.maxFree) {
      this.free.push(data.buffer as ArrayBuffer);
    }
  }
}

export const payloadPool = new PayloadPool();
