// A tiny 64-bit guest for the KVM tests: 2 MiB of RAM, identity-mapped page
// tables for the first 1 GiB, a flat GDT, and machine code at CODE_ADDRESS,
// entered directly in long mode at CPL0 (no firmware, no real mode).
//
// This machine's /dev/kvm is PVM: CPL0 guest code is emulated (about 4 MIPS),
// so guest loops must stay short.

import { existsSync, readdirSync } from 'node:fs';
import { Kvm } from '../../src/kvm/kvm.js';
import { VcpuFd } from '../../src/kvm/vcpu-fd.js';
import { VmFd } from '../../src/kvm/vm-fd.js';
import { emptyRegs, KvmSegment } from '../../src/kvm/structs/registers.js';
import { GuestRam, allocateGuestRam, registerGuestRam } from '../../src/memory/ram.js';

export const hasKvm = existsSync('/dev/kvm');

export const RAM_SIZE = 2 * 1024 * 1024;
const GDT_ADDRESS = 0x500;
const PML4_ADDRESS = 0x1000;
const PDPT_ADDRESS = 0x2000;
const PD_ADDRESS = 0x3000;
export const STACK_TOP = 0x7000;
export const CODE_ADDRESS = 0x8000;
/** Guest RAM free for the tests' own variables (locks, flags). */
export const DATA_ADDRESS = 0x9000;
/** Not RAM, but mapped by the page tables: accesses here are MMIO exits. */
export const MMIO_ADDRESS = 0x1000_0000;

export interface TinyGuest {
  kvm: Kvm;
  vm: VmFd;
  /** vcpus[0]. */
  vcpu: VcpuFd;
  vcpus: VcpuFd[];
  ram: GuestRam;
  close(): void;
}

/**
 * Builds the VM and its vCPUs (one unless `vcpuCount` says more), all ready
 * to run `code` in 64-bit mode. Each vCPU starts with its index in edi and a
 * stack of its own (1 KiB each, below STACK_TOP).
 */
export function createTinyGuest(
  code: readonly number[], options: { irqchip?: boolean; vcpuCount?: number } = {},
): TinyGuest {
  const kvm = Kvm.open();
  const vm = kvm.createVm();
  if (options.irqchip) {
    vm.setTssAddress(0xfffb_d000);
    vm.createIrqchip();
  }
  const ram = allocateGuestRam(RAM_SIZE, [{ guestAddress: 0, size: RAM_SIZE }]);
  registerGuestRam(vm, ram);
  const memory = ram.memory;

  // 4-level paging: PML4[0] -> PDPT[0] -> PD with 512 2-MiB pages (PS bit, 0x80).
  memory.writeU64(PML4_ADDRESS, BigInt(PDPT_ADDRESS | 0x3)); // present | writable
  memory.writeU64(PDPT_ADDRESS, BigInt(PD_ADDRESS | 0x3));
  for (let i = 0; i < 512; i++) memory.writeU64(PD_ADDRESS + i * 8, (BigInt(i) << 21n) | 0x83n);

  // GDT: null, 64-bit code (selector 0x8), data (selector 0x10).
  memory.writeU64(GDT_ADDRESS, 0n);
  memory.writeU64(GDT_ADDRESS + 8, 0x00af_9b00_0000_ffffn);
  memory.writeU64(GDT_ADDRESS + 16, 0x00cf_9300_0000_ffffn);

  memory.write(CODE_ADDRESS, Uint8Array.from(code));

  const vcpus = Array.from({ length: options.vcpuCount ?? 1 }, (_, index) => {
    const vcpu = vm.createVcpu(index);
    const sregs = vcpu.getSregs();
    const segment = (selector: number, type: number, l: number, db: number): KvmSegment => ({
      base: 0n, limit: 0xffff_ffff, selector, type, present: 1, dpl: 0, db, s: 1, l, g: 1, avl: 0, unusable: 0,
    });
    sregs.cs = segment(0x8, 0xb, 1, 0);
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = segment(0x10, 0x3, 0, 1);
    sregs.gdt = { base: BigInt(GDT_ADDRESS), limit: 23 };
    sregs.idt = { base: 0n, limit: 0 }; // no IDT: any exception escalates to a triple fault
    sregs.cr3 = BigInt(PML4_ADDRESS);
    sregs.cr4 = 0x20n; // PAE
    sregs.cr0 = 0x8000_0011n; // PG | ET | PE
    sregs.efer = 0x500n; // LMA | LME
    vcpu.setSregs(sregs);
    vcpu.setRegs({
      ...emptyRegs(), rip: BigInt(CODE_ADDRESS), rsp: BigInt(STACK_TOP - index * 0x400), rdi: BigInt(index), rflags: 0x2n,
    });
    return vcpu;
  });

  return {
    kvm, vm, vcpu: vcpus[0]!, vcpus, ram,
    close() {
      vm.close(); // closes the vCPU too
      kvm.close();
      ram.free();
    },
  };
}

/** Number of open fds of this process. */
export function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}
