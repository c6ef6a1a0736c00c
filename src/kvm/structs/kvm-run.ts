// struct kvm_run: the page (or pages) KVM shares with user space per vCPU,
// mapped from the vCPU fd. After KVM_RUN returns, exit_reason says why and
// one member of a union at offset 32 describes the exit. For port I/O, the
// data itself sits elsewhere in the mapping, at io.data_offset.
//
// KvmRun reads the fields straight from the shared mapping through a
// DataView: no struct decoding on the hot path.

import { dataView } from './data-view.js';

export const KVM_RUN_SIZE = 2352;
export const KVM_RUN_OFFSETS = {
  requestInterruptWindow: 0,
  immediateExit: 1,
  exitReason: 8,
  readyForInterruptInjection: 12,
  ifFlag: 13,
  flags: 14,
  cr8: 16,
  apicBase: 24,
  /** The exit-specific union starts here. */
  exitUnion: 32,
  io: { direction: 32, size: 33, port: 34, count: 36, dataOffset: 40 },
  mmio: { physAddr: 32, data: 40, len: 48, isWrite: 52 },
  failEntry: { hardwareEntryFailureReason: 32, cpu: 40 },
  internal: { suberror: 32, ndata: 36, data: 40 },
  systemEvent: { type: 32, ndata: 36, data: 40 },
  kvmValidRegs: 288,
  kvmDirtyRegs: 296,
  syncRegs: 304,
} as const;

const O = KVM_RUN_OFFSETS;

export class KvmRun {
  private readonly view: DataView;

  /** `bytes` is the mmapped kvm_run area (KVM_GET_VCPU_MMAP_SIZE bytes). */
  constructor(readonly bytes: Uint8Array) {
    this.view = dataView(bytes);
  }

  get exitReason(): number {
    return this.view.getUint32(O.exitReason, true);
  }

  /** When set, KVM_RUN returns EINTR at once instead of entering the guest. */
  get immediateExit(): boolean {
    return this.bytes[O.immediateExit] !== 0;
  }
  set immediateExit(value: boolean) {
    this.bytes[O.immediateExit] = value ? 1 : 0;
  }

  // ---- KVM_EXIT_IO ----
  /** KVM_EXIT_IO_IN (0) or KVM_EXIT_IO_OUT (1). */
  get ioDirection(): number { return this.view.getUint8(O.io.direction); }
  /** Bytes per access: 1, 2 or 4. */
  get ioSize(): number { return this.view.getUint8(O.io.size); }
  get ioPort(): number { return this.view.getUint16(O.io.port, true); }
  /** Number of accesses (more than 1 for rep ins/outs). */
  get ioCount(): number { return this.view.getUint32(O.io.count, true); }
  /** Offset of the data (ioSize * ioCount bytes) from the start of the mapping. */
  get ioDataOffset(): number { return Number(this.view.getBigUint64(O.io.dataOffset, true)); }
  /** A live view of the I/O data: read it for OUT, fill it for IN. */
  ioData(): Uint8Array {
    const offset = this.ioDataOffset;
    return this.bytes.subarray(offset, offset + this.ioSize * this.ioCount);
  }

  // ---- KVM_EXIT_MMIO ----
  get mmioAddress(): bigint { return this.view.getBigUint64(O.mmio.physAddr, true); }
  get mmioLength(): number { return this.view.getUint32(O.mmio.len, true); }
  get mmioIsWrite(): boolean { return this.view.getUint8(O.mmio.isWrite) !== 0; }
  /** A live view of the mmio data (mmioLength bytes): read it for writes, fill it for reads. */
  mmioData(): Uint8Array {
    return this.bytes.subarray(O.mmio.data, O.mmio.data + this.mmioLength);
  }

  // ---- KVM_EXIT_FAIL_ENTRY ----
  get failEntryReason(): bigint { return this.view.getBigUint64(O.failEntry.hardwareEntryFailureReason, true); }
  get failEntryCpu(): number { return this.view.getUint32(O.failEntry.cpu, true); }

  // ---- KVM_EXIT_INTERNAL_ERROR ----
  get internalSuberror(): number { return this.view.getUint32(O.internal.suberror, true); }
  /** The extra words KVM attached to an internal error (at most 16). */
  internalData(): bigint[] {
    const count = Math.min(this.view.getUint32(O.internal.ndata, true), 16);
    return Array.from({ length: count }, (_, i) => this.view.getBigUint64(O.internal.data + i * 8, true));
  }

  // ---- KVM_EXIT_SYSTEM_EVENT ----
  get systemEventType(): number { return this.view.getUint32(O.systemEvent.type, true); }
  systemEventData(): bigint[] {
    const count = Math.min(this.view.getUint32(O.systemEvent.ndata, true), 16);
    return Array.from({ length: count }, (_, i) => this.view.getBigUint64(O.systemEvent.data + i * 8, true));
  }
}
