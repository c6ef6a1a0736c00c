// Tiny kernel images built byte by byte, so the loaders can be tested
// without a kernel build and with every field under the test's control,
// and inMemory() to hand them to the loaders as the files the VM reads
// would be (test/unit/vm/image-file.test.ts tests the file-backed source).
import type { ImageSource } from '../../../src/arch/x86_64/image-source.js';

/** `bytes` as an image source; like a file, it refuses a read past its end rather than giving zeros. */
export function inMemory(bytes: Uint8Array): ImageSource {
  return {
    size: bytes.byteLength,
    readInto(target, position) {
      if (position < 0 || position + target.byteLength > bytes.byteLength) {
        throw new RangeError(`read of [${position}, +${target.byteLength}) past the end of a ${bytes.byteLength}-byte image`);
      }
      target.set(bytes.subarray(position, position + target.byteLength));
    },
  };
}

/** `source`, with each read it serves logged as [position, length]: what a loader read, and what not. */
export function loggingReads(source: ImageSource): { source: ImageSource; reads: [number, number][] } {
  const reads: [number, number][] = [];
  return {
    reads,
    source: {
      size: source.size,
      readInto(target, position) {
        reads.push([position, target.byteLength]);
        source.readInto(target, position);
      },
    },
  };
}

export interface SyntheticSegment {
  paddr: bigint;
  vaddr?: bigint;
  data: Uint8Array;
  memsz?: bigint;
  type?: number; // p_type, PT_LOAD (1) by default
}

export interface SyntheticElfOptions {
  entry: bigint;
  segments: SyntheticSegment[];
  elfClass?: number;
  machine?: number;
  type?: number;
}

/** An ELF64 little-endian executable: header, program headers, then segment data. */
export function makeElf(options: SyntheticElfOptions): Uint8Array {
  const headerSize = 64;
  const phdrSize = 56;
  let dataOffset = headerSize + options.segments.length * phdrSize;
  const offsets = options.segments.map((s) => {
    const at = dataOffset;
    dataOffset += s.data.byteLength;
    return at;
  });
  const bytes = new Uint8Array(dataOffset);
  const view = new DataView(bytes.buffer);
  bytes.set([0x7f, 0x45, 0x4c, 0x46, options.elfClass ?? 2, 1, 1], 0);
  view.setUint16(16, options.type ?? 2, true);
  view.setUint16(18, options.machine ?? 62, true);
  view.setUint32(20, 1, true);
  view.setBigUint64(24, options.entry, true);
  view.setBigUint64(32, BigInt(headerSize), true);
  view.setUint16(52, headerSize, true);
  view.setUint16(54, phdrSize, true);
  view.setUint16(56, options.segments.length, true);
  options.segments.forEach((s, i) => {
    const at = headerSize + i * phdrSize;
    view.setUint32(at, s.type ?? 1, true);
    view.setUint32(at + 4, 5, true);
    view.setBigUint64(at + 8, BigInt(offsets[i]!), true);
    view.setBigUint64(at + 16, s.vaddr ?? s.paddr, true);
    view.setBigUint64(at + 24, s.paddr, true);
    view.setBigUint64(at + 32, BigInt(s.data.byteLength), true);
    view.setBigUint64(at + 40, s.memsz ?? BigInt(s.data.byteLength), true);
    view.setBigUint64(at + 48, 0x200000n, true);
    bytes.set(s.data, offsets[i]!);
  });
  return bytes;
}

export interface SyntheticBzImageOptions {
  setupSects?: number;
  version?: number;
  loadflags?: number;
  xloadflags?: number;
  relocatable?: boolean;
  kernelAlignment?: number;
  prefAddress?: bigint;
  initSize?: number;
  cmdlineSize?: number;
  initrdAddrMax?: number;
  /** The protected-mode part that follows the setup sectors. */
  payload: Uint8Array;
}

/** A bzImage: boot sector + setup sectors (only the header is meaningful), then the payload. */
export function makeBzImage(options: SyntheticBzImageOptions): Uint8Array {
  const setupSects = options.setupSects ?? 4;
  const setupBytes = ((setupSects === 0 ? 4 : setupSects) + 1) * 512;
  const bytes = new Uint8Array(setupBytes + options.payload.byteLength);
  const view = new DataView(bytes.buffer);
  view.setUint8(0x1f1, setupSects);
  view.setUint16(0x1fa, 0xffff, true); // vid_mode
  view.setUint16(0x1fe, 0xaa55, true);
  view.setUint8(0x200, 0xeb);
  view.setUint8(0x201, 0x6a); // header ends at 0x26c, as in Linux 6.x
  view.setUint32(0x202, 0x53726448, true);
  view.setUint16(0x206, options.version ?? 0x020f, true);
  view.setUint8(0x211, options.loadflags ?? 0x01);
  view.setUint32(0x214, 0x100000, true);
  view.setUint32(0x22c, options.initrdAddrMax ?? 0x7fffffff, true);
  view.setUint32(0x230, options.kernelAlignment ?? 0x200000, true);
  view.setUint8(0x234, options.relocatable === false ? 0 : 1);
  view.setUint8(0x235, 21);
  view.setUint16(0x236, options.xloadflags ?? 0x1, true);
  view.setUint32(0x238, options.cmdlineSize ?? 2047, true);
  view.setBigUint64(0x258, options.prefAddress ?? 0x1000000n, true);
  view.setUint32(0x260, options.initSize ?? 0x100000, true);
  view.setUint32(0x268, 0xabcdef, true); // kernel_info_offset, last field inside the header
  view.setUint8(0x26c, 0x8c); // first byte after the header: must not be copied
  bytes.set(options.payload, setupBytes);
  return bytes;
}

/** Deterministic non-zero filler so copied bytes are recognisable. */
export function pattern(length: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed) & 0xff || 0x5a;
  return bytes;
}
