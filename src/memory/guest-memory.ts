// Guest physical memory as seen by the VMM: one host buffer (an mmap shared
// with KVM, or a plain buffer in tests) and the regions of guest physical
// address space that map into it. Every access is bounds-checked: addresses
// and lengths often come from the guest, and a bad one must fail the request,
// never touch host memory outside the guest's RAM.

export class GuestMemoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GuestMemoryError';
  }
}

/** A run of guest physical addresses backed by `bytes[hostOffset, hostOffset + size)`. */
export interface MemoryRegion {
  readonly guestAddress: number;
  readonly size: number;
  readonly hostOffset: number;
}

export class GuestMemory {
  readonly bytes: Uint8Array;
  readonly regions: readonly MemoryRegion[];
  private readonly view: DataView;

  /** `regions` defaults to one region mapping guest address 0 onto all of `bytes`. */
  constructor(bytes: Uint8Array, regions?: readonly MemoryRegion[]) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.regions = regions ?? [{ guestAddress: 0, size: bytes.byteLength, hostOffset: 0 }];
    for (const r of this.regions) {
      if (r.hostOffset < 0 || r.size < 0 || r.hostOffset + r.size > bytes.byteLength) {
        throw new RangeError(`memory region at 0x${r.guestAddress.toString(16)} does not fit its backing buffer`);
      }
    }
  }

  /** Zero-filled memory in a SharedArrayBuffer (tests, simulated guests). */
  static allocate(size: number, regions?: readonly MemoryRegion[]): GuestMemory {
    return new GuestMemory(new Uint8Array(new SharedArrayBuffer(size)), regions);
  }

  /** Total bytes of guest RAM. */
  get size(): number {
    return this.regions.reduce((sum, r) => sum + r.size, 0);
  }

  /** True when [address, address + length) lies inside one region. */
  contains(address: number, length: number): boolean {
    return this.findRegion(address, length) !== undefined;
  }

  /** A live view (no copy) of guest memory; throws when out of bounds. */
  slice(address: number, length: number): Uint8Array {
    const offset = this.hostOffset(address, length);
    return this.bytes.subarray(offset, offset + length);
  }

  read(address: number, target: Uint8Array): void {
    target.set(this.slice(address, target.byteLength));
  }

  write(address: number, source: Uint8Array): void {
    this.slice(address, source.byteLength).set(source);
  }

  fill(address: number, length: number, value = 0): void {
    this.slice(address, length).fill(value);
  }

  readU8(address: number): number {
    return this.view.getUint8(this.hostOffset(address, 1));
  }
  readU16(address: number): number {
    return this.view.getUint16(this.hostOffset(address, 2), true);
  }
  readU32(address: number): number {
    return this.view.getUint32(this.hostOffset(address, 4), true);
  }
  readU64(address: number): bigint {
    return this.view.getBigUint64(this.hostOffset(address, 8), true);
  }
  writeU8(address: number, value: number): void {
    this.view.setUint8(this.hostOffset(address, 1), value);
  }
  writeU16(address: number, value: number): void {
    this.view.setUint16(this.hostOffset(address, 2), value, true);
  }
  writeU32(address: number, value: number): void {
    this.view.setUint32(this.hostOffset(address, 4), value, true);
  }
  writeU64(address: number, value: bigint): void {
    this.view.setBigUint64(this.hostOffset(address, 8), value, true);
  }

  private findRegion(address: number, length: number): MemoryRegion | undefined {
    if (!Number.isSafeInteger(address) || !Number.isSafeInteger(length) || address < 0 || length < 0) {
      return undefined;
    }
    return this.regions.find((r) => address >= r.guestAddress && address + length <= r.guestAddress + r.size);
  }

  private hostOffset(address: number, length: number): number {
    const region = this.findRegion(address, length);
    if (region === undefined) {
      throw new GuestMemoryError(
        `guest access [0x${address.toString(16)}, +${length}) is outside guest memory`);
    }
    return region.hostOffset + (address - region.guestAddress);
  }
}
