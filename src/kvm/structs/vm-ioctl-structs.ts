// Byte layouts of the VM-wide structs that the VM fd's ioctls take (<linux/kvm.h>; not
// to be confused with the VmConfig of src/config, what the user asked for):
//
//   struct kvm_userspace_memory_region  a slot of guest RAM     (KVM_SET_USER_MEMORY_REGION)
//   struct kvm_irqfd                    eventfd -> interrupt    (KVM_IRQFD)
//   struct kvm_ioeventfd                guest write -> eventfd  (KVM_IOEVENTFD)
//   struct kvm_irq_level                raise/lower an IRQ line (KVM_IRQ_LINE)
//   struct kvm_pit_config               in-kernel i8254 PIT     (KVM_CREATE_PIT2)
//
// These are small and set up once, so each has a single encoder.

import { dataView } from './data-view.js';

export const USER_MEMORY_REGION_SIZE = 32;
export const USER_MEMORY_REGION_OFFSETS = {
  slot: 0, flags: 4, guestPhysAddr: 8, memorySize: 16, userspaceAddr: 24,
} as const;

export interface UserMemoryRegion {
  slot: number;
  flags?: number;
  guestPhysAddr: bigint;
  /** 0 deletes the slot. */
  memorySize: bigint;
  userspaceAddr: bigint;
}

export function encodeUserMemoryRegion(region: UserMemoryRegion): Uint8Array {
  const bytes = new Uint8Array(USER_MEMORY_REGION_SIZE);
  const view = dataView(bytes);
  const o = USER_MEMORY_REGION_OFFSETS;
  view.setUint32(o.slot, region.slot, true);
  view.setUint32(o.flags, region.flags ?? 0, true);
  view.setBigUint64(o.guestPhysAddr, region.guestPhysAddr, true);
  view.setBigUint64(o.memorySize, region.memorySize, true);
  view.setBigUint64(o.userspaceAddr, region.userspaceAddr, true);
  return bytes;
}

export const IRQFD_SIZE = 32;
export const IRQFD_OFFSETS = { fd: 0, gsi: 4, flags: 8, resamplefd: 12 } as const;
export const KVM_IRQFD_FLAG_DEASSIGN = 1 << 0;

export interface IrqFd {
  fd: number;
  gsi: number;
  flags?: number;
  resampleFd?: number;
}

export function encodeIrqfd(irqfd: IrqFd): Uint8Array {
  const bytes = new Uint8Array(IRQFD_SIZE);
  const view = dataView(bytes);
  view.setUint32(IRQFD_OFFSETS.fd, irqfd.fd, true);
  view.setUint32(IRQFD_OFFSETS.gsi, irqfd.gsi, true);
  view.setUint32(IRQFD_OFFSETS.flags, irqfd.flags ?? 0, true);
  view.setUint32(IRQFD_OFFSETS.resamplefd, irqfd.resampleFd ?? 0, true);
  return bytes;
}

export const IOEVENTFD_SIZE = 64;
export const IOEVENTFD_OFFSETS = { datamatch: 0, addr: 8, len: 16, fd: 20, flags: 24 } as const;
export const KVM_IOEVENTFD_FLAG_DATAMATCH = 1 << 0;
export const KVM_IOEVENTFD_FLAG_PIO = 1 << 1;
export const KVM_IOEVENTFD_FLAG_DEASSIGN = 1 << 2;

export interface IoEventFd {
  /** Guest address (MMIO) or port (PIO) whose writes signal `fd`. */
  address: bigint;
  /** Access width that matches: 1, 2, 4 or 8; 0 matches any width (MMIO only). */
  length: number;
  fd: number;
  flags?: number;
  /** With KVM_IOEVENTFD_FLAG_DATAMATCH: only writes of this value signal. */
  datamatch?: bigint;
}

export function encodeIoeventfd(ioeventfd: IoEventFd): Uint8Array {
  const bytes = new Uint8Array(IOEVENTFD_SIZE);
  const view = dataView(bytes);
  const o = IOEVENTFD_OFFSETS;
  view.setBigUint64(o.datamatch, ioeventfd.datamatch ?? 0n, true);
  view.setBigUint64(o.addr, ioeventfd.address, true);
  view.setUint32(o.len, ioeventfd.length, true);
  view.setInt32(o.fd, ioeventfd.fd, true);
  view.setUint32(o.flags, ioeventfd.flags ?? 0, true);
  return bytes;
}

export const IRQ_LEVEL_SIZE = 8;
export const IRQ_LEVEL_OFFSETS = { irq: 0, level: 4 } as const;

export function encodeIrqLevel(irq: number, level: number): Uint8Array {
  const bytes = new Uint8Array(IRQ_LEVEL_SIZE);
  const view = dataView(bytes);
  view.setUint32(IRQ_LEVEL_OFFSETS.irq, irq, true);
  view.setUint32(IRQ_LEVEL_OFFSETS.level, level, true);
  return bytes;
}

export const PIT_CONFIG_SIZE = 64;
export const PIT_CONFIG_OFFSETS = { flags: 0 } as const;
/** Emulate the PC speaker port 0x61 as a dummy, as Firecracker and QEMU do. */
export const KVM_PIT_SPEAKER_DUMMY = 1;

export function encodePitConfig(flags: number): Uint8Array {
  const bytes = new Uint8Array(PIT_CONFIG_SIZE);
  dataView(bytes).setUint32(PIT_CONFIG_OFFSETS.flags, flags, true);
  return bytes;
}
