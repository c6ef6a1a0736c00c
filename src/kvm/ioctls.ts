// KVM ioctl request numbers, built the way <asm-generic/ioctl.h> builds them:
//
//   bits 31-30  direction (none / write = user->kernel / read = kernel->user)
//   bits 29-16  size of the argument struct
//   bits 15-8   "type", 0xAE for every KVM ioctl (KVMIO)
//   bits 7-0    command number
//
// The sizes come from structs/, so a wrong struct size shows up here too.
// Reference: Documentation/virt/kvm/api.rst and <linux/kvm.h>.

import {
  CPUID2_HEADER_SIZE, FPU_SIZE, LAPIC_STATE_SIZE, MSRS_HEADER_SIZE,
} from './structs/cpu-state.js';
import { REGS_SIZE, SREGS_SIZE } from './structs/registers.js';
import {
  IOEVENTFD_SIZE, IRQFD_SIZE, IRQ_LEVEL_SIZE, PIT_CONFIG_SIZE, USER_MEMORY_REGION_SIZE,
} from './structs/vm-ioctl-structs.js';

const IOC_NONE = 0;
const IOC_WRITE = 1;
const IOC_READ = 2;

const KVMIO = 0xae;

function ioc(direction: number, type: number, nr: number, size: number): number {
  // `>>> 0` keeps the result an unsigned 32-bit number (bit 31 is set for reads).
  return ((direction << 30) | (size << 16) | (type << 8) | nr) >>> 0;
}
const io = (nr: number) => ioc(IOC_NONE, KVMIO, nr, 0);
const ior = (nr: number, size: number) => ioc(IOC_READ, KVMIO, nr, size);
const iow = (nr: number, size: number) => ioc(IOC_WRITE, KVMIO, nr, size);
const iowr = (nr: number, size: number) => ioc(IOC_READ | IOC_WRITE, KVMIO, nr, size);

/** Size of an `unsigned long` / `__u64` argument. */
const U64 = 8;

export const KVM = {
  // On the /dev/kvm fd.
  GET_API_VERSION: io(0x00),
  CREATE_VM: io(0x01),
  GET_MSR_INDEX_LIST: iowr(0x02, 4),
  CHECK_EXTENSION: io(0x03),
  GET_VCPU_MMAP_SIZE: io(0x04),
  GET_SUPPORTED_CPUID: iowr(0x05, CPUID2_HEADER_SIZE),

  // On a VM fd.
  CREATE_VCPU: io(0x41),
  SET_USER_MEMORY_REGION: iow(0x46, USER_MEMORY_REGION_SIZE),
  SET_TSS_ADDR: io(0x47),
  SET_IDENTITY_MAP_ADDR: iow(0x48, U64),
  CREATE_IRQCHIP: io(0x60),
  IRQ_LINE: iow(0x61, IRQ_LEVEL_SIZE),
  IRQFD: iow(0x76, IRQFD_SIZE),
  CREATE_PIT2: iow(0x77, PIT_CONFIG_SIZE),
  IOEVENTFD: iow(0x79, IOEVENTFD_SIZE),

  // On a vCPU fd.
  RUN: io(0x80),
  GET_REGS: ior(0x81, REGS_SIZE),
  SET_REGS: iow(0x82, REGS_SIZE),
  GET_SREGS: ior(0x83, SREGS_SIZE),
  SET_SREGS: iow(0x84, SREGS_SIZE),
  GET_MSRS: iowr(0x88, MSRS_HEADER_SIZE),
  SET_MSRS: iow(0x89, MSRS_HEADER_SIZE),
  GET_FPU: ior(0x8c, FPU_SIZE),
  SET_FPU: iow(0x8d, FPU_SIZE),
  GET_LAPIC: ior(0x8e, LAPIC_STATE_SIZE),
  SET_LAPIC: iow(0x8f, LAPIC_STATE_SIZE),
  SET_CPUID2: iow(0x90, CPUID2_HEADER_SIZE),
  GET_CPUID2: iowr(0x91, CPUID2_HEADER_SIZE),
} as const;

/** KVM_CHECK_EXTENSION capability numbers used by tsvmm (<linux/kvm.h> KVM_CAP_*). */
export const KvmCap = {
  IRQCHIP: 0,
  HLT: 1,
  USER_MEMORY: 3,
  SET_TSS_ADDR: 4,
  EXT_CPUID: 7,
  NR_VCPUS: 9,
  NR_MEMSLOTS: 10,
  PIT2: 33,
  IOEVENTFD: 36,
  SET_IDENTITY_MAP_ADDR: 37,
  IRQFD: 32,
  MAX_VCPUS: 66,
  TSC_DEADLINE_TIMER: 72,
  IMMEDIATE_EXIT: 136,
} as const;
