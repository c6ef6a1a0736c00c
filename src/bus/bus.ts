// An address space (port I/O or MMIO) divided among devices. A vCPU exit at
// an address is routed to the device whose range holds it, with the offset
// into that range, so devices never need to know where they were placed.
import { hex } from '../hex.js';
import { accessValue, trace } from '../trace.js';

/** A device on a bus. `data` is 1 to 8 bytes, little-endian, as the guest accessed it. */
export interface BusDevice {
  read(offset: number, data: Uint8Array): void;
  write(offset: number, data: Uint8Array): void;
  /** The register at `offset`, by name, for `--trace pio,mmio` (e.g. "QueueNotify"); absent: the offset is shown. */
  registerName?(offset: number): string | undefined;
}

interface Mapping {
  readonly base: number;
  readonly size: number;
  readonly device: BusDevice;
  readonly name: string;
}

export class Bus {
  private readonly mappings: Mapping[] = [];

  /** `traceCategory`: the `--trace` category that shows this bus's accesses. */
  constructor(readonly name: string, private readonly traceCategory: 'pio' | 'mmio') {}

  private get traced(): boolean {
    return trace[this.traceCategory];
  }

  /** Places `device` at [base, base + size); overlapping another device is a programming error. */
  register(base: number, size: number, device: BusDevice, name: string): void {
    const clash = this.mappings.find((m) => base < m.base + m.size && m.base < base + size);
    if (clash) {
      throw new Error(`${this.name} bus: ${name} at 0x${base.toString(16)} overlaps ${clash.name}`);
    }
    this.mappings.push({ base, size, device, name });
    this.mappings.sort((a, b) => a.base - b.base);
  }

  /** Reads into `data`; returns false (and fills 0xff, as open bus) when nothing is there. */
  read(address: number, data: Uint8Array): boolean {
    const m = this.find(address, data.byteLength);
    if (!m) {
      data.fill(0xff);
      return false;
    }
    m.device.read(address - m.base, data);
    if (this.traced) this.traceAccess(m, address, data, '->');
    return true;
  }

  /** Writes `data`; returns false (and drops it) when nothing is there. */
  write(address: number, data: Uint8Array): boolean {
    const m = this.find(address, data.byteLength);
    if (!m) return false;
    if (this.traced) this.traceAccess(m, address, data, '<-');
    m.device.write(address - m.base, data);
    return true;
  }

  /** `virtio-mmio@0xd0000000 vsock QueueNotify <- 0x1` (a write) or `... -> 0x...` (a read's answer). */
  private traceAccess(m: Mapping, address: number, data: Uint8Array, arrow: '<-' | '->'): void {
    const offset = address - m.base;
    const register = m.device.registerName?.(offset) ?? `+${hex(offset)}`;
    trace.line(this.traceCategory, `${m.name}@${hex(m.base)} ${register} ${arrow} ${hex(accessValue(data))}`);
  }

  private find(address: number, length: number): Mapping | undefined {
    return this.mappings.find((m) => address >= m.base && address + length <= m.base + m.size);
  }
}
