// A vCPU fd (from KVM_CREATE_VCPU): its registers and CPU state, and the
// mmapped kvm_run area through which KVM_RUN reports exits.
//
// Usually the KVM_RUN loop runs in a worker thread (src/vcpu/) that maps
// kvm_run itself; this object is where the main thread sets the vCPU up
// before that and where it sets kvm_run.immediate_exit to stop it.

import { ExitReason } from './exit-reasons.js';
import { KVM } from './ioctls.js';
import {
  MAP_SHARED, PROT_READ, PROT_WRITE, closeFd, ioctlPtr, libc, lastErrno, mapMemory, unmapMemory, viewMemory,
} from '../sys/libc.js';
import {
  CpuidEntry, FPU_SIZE, KvmFpu, LAPIC_STATE_SIZE, MsrEntry,
  decodeFpu, decodeMsrs, encodeCpuid2, encodeFpu, encodeMsrs,
} from './structs/cpu-state.js';
import { KvmRun } from './structs/kvm-run.js';
import { KvmRegs, KvmSregs, REGS_SIZE, SREGS_SIZE, decodeRegs, decodeSregs, encodeRegs, encodeSregs } from './structs/registers.js';
import { Errno, SystemCallError } from '../sys/system-error.js';

export class VcpuFd {
  private fdOrClosed: number;
  private readonly runAddress: number;
  /** The kvm_run area mapped into this thread's view of the process. */
  readonly run: KvmRun;

  /** Use VmFd.createVcpu(). */
  constructor(fd: number, readonly id: number, readonly mmapSize: number, private readonly onClose?: () => void) {
    this.fdOrClosed = fd;
    try {
      this.runAddress = mapMemory(mmapSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
    } catch (error) {
      closeFd(fd);
      throw error;
    }
    this.run = new KvmRun(viewMemory(this.runAddress, mmapSize));
  }

  get fd(): number {
    if (this.fdOrClosed < 0) throw new Error(`vCPU ${this.id} is closed`);
    return this.fdOrClosed;
  }

  /**
   * Runs the guest on the calling thread until the next exit and returns
   * kvm_run.exit_reason. A signal or immediate_exit makes it return
   * ExitReason.INTR. Blocks the thread: the VMM calls this from a worker.
   */
  runOnce(): number {
    if (libc.ioctlInt(this.fd, KVM.RUN, 0) < 0) {
      const errno = lastErrno();
      if (errno === Errno.EINTR) return ExitReason.INTR;
      throw new SystemCallError('KVM_RUN', errno);
    }
    return this.run.exitReason;
  }

  getRegs(): KvmRegs {
    return decodeRegs(this.getRegsInto(new Uint8Array(REGS_SIZE)));
  }
  setRegs(regs: KvmRegs): void {
    this.setRegsFrom(encodeRegs(regs));
  }
  /** Hot-path variants: raw struct kvm_regs bytes, no decoding. */
  getRegsInto(buffer: Uint8Array): Uint8Array {
    ioctlPtr(this.fd, KVM.GET_REGS, buffer, 'KVM_GET_REGS');
    return buffer;
  }
  setRegsFrom(buffer: Uint8Array): void {
    ioctlPtr(this.fd, KVM.SET_REGS, buffer, 'KVM_SET_REGS');
  }

  getSregs(): KvmSregs {
    const buffer = new Uint8Array(SREGS_SIZE);
    ioctlPtr(this.fd, KVM.GET_SREGS, buffer, 'KVM_GET_SREGS');
    return decodeSregs(buffer);
  }
  setSregs(sregs: KvmSregs): void {
    ioctlPtr(this.fd, KVM.SET_SREGS, encodeSregs(sregs), 'KVM_SET_SREGS');
  }

  getFpu(): KvmFpu {
    const buffer = new Uint8Array(FPU_SIZE);
    ioctlPtr(this.fd, KVM.GET_FPU, buffer, 'KVM_GET_FPU');
    return decodeFpu(buffer);
  }
  setFpu(fpu: KvmFpu): void {
    ioctlPtr(this.fd, KVM.SET_FPU, encodeFpu(fpu), 'KVM_SET_FPU');
  }

  /** Reads the given MSRs. */
  getMsrs(indices: readonly number[]): MsrEntry[] {
    const buffer = encodeMsrs(indices.map((index) => ({ index, data: 0n })));
    const count = ioctlPtr(this.fd, KVM.GET_MSRS, buffer, 'KVM_GET_MSRS');
    if (count < indices.length) {
      throw new Error(`KVM_GET_MSRS: MSR 0x${indices[count]!.toString(16)} cannot be read`);
    }
    return decodeMsrs(buffer, count);
  }

  /** Writes the given MSRs; KVM stops at the first one it refuses, which we name. */
  setMsrs(entries: readonly MsrEntry[]): void {
    const count = ioctlPtr(this.fd, KVM.SET_MSRS, encodeMsrs(entries), 'KVM_SET_MSRS');
    if (count < entries.length) {
      const refused = entries[count]!;
      throw new Error(`KVM_SET_MSRS: MSR 0x${refused.index.toString(16)} refused value 0x${refused.data.toString(16)}`);
    }
  }

  setCpuid2(entries: readonly CpuidEntry[]): void {
    ioctlPtr(this.fd, KVM.SET_CPUID2, encodeCpuid2(entries), 'KVM_SET_CPUID2');
  }

  /** The local APIC register page (needs the in-kernel irqchip). */
  getLapic(): Uint8Array {
    const state = new Uint8Array(LAPIC_STATE_SIZE);
    ioctlPtr(this.fd, KVM.GET_LAPIC, state, 'KVM_GET_LAPIC');
    return state;
  }
  setLapic(state: Uint8Array): void {
    if (state.byteLength !== LAPIC_STATE_SIZE) {
      throw new RangeError(`KVM_SET_LAPIC needs ${LAPIC_STATE_SIZE} bytes, got ${state.byteLength}`);
    }
    ioctlPtr(this.fd, KVM.SET_LAPIC, state, 'KVM_SET_LAPIC');
  }

  /** Unmaps kvm_run and closes the fd. Stop the vCPU's worker first. */
  close(): void {
    if (this.fdOrClosed < 0) return;
    const fd = this.fdOrClosed;
    this.fdOrClosed = -1;
    unmapMemory(this.runAddress, this.mmapSize);
    closeFd(fd);
    this.onClose?.();
  }
}
