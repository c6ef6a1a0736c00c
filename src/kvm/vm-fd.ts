// A VM fd (from KVM_CREATE_VM): the VM-wide state. Guest RAM slots, the
// in-kernel interrupt controllers and PIT, eventfd wiring for interrupts
// (irqfd) and for doorbell writes (ioeventfd), and the vCPUs.
// Reference: Documentation/virt/kvm/api.rst, sections 4.x per ioctl.

import { KVM } from './ioctls.js';
import { closeFd, ioctlInt, ioctlPtr } from '../sys/libc.js';
import {
  KVM_IOEVENTFD_FLAG_DATAMATCH, KVM_IOEVENTFD_FLAG_DEASSIGN, KVM_IOEVENTFD_FLAG_PIO,
  KVM_IRQFD_FLAG_DEASSIGN, KVM_PIT_SPEAKER_DUMMY,
  encodeIoeventfd, encodeIrqLevel, encodeIrqfd, encodePitConfig, encodeUserMemoryRegion,
} from './structs/vm-ioctl-structs.js';
import { VcpuFd } from './vcpu-fd.js';

/** Where a guest write should signal an eventfd instead of exiting to user space. */
export interface IoEventFdBinding {
  /** The eventfd to signal. */
  fd: number;
  /** Guest physical address (MMIO) or port number (PIO). */
  address: number | bigint;
  /** Access width in bytes (1, 2, 4, 8); 0 = any width (MMIO only). */
  length: number;
  /** True for a port I/O address. */
  pio?: boolean;
  /** Only writes of exactly this value signal the eventfd. */
  datamatch?: number | bigint;
}

export class VmFd {
  private fdOrClosed: number;
  private readonly vcpus = new Set<VcpuFd>();

  /** Use Kvm.createVm(). `vcpuMmapSize` is KVM_GET_VCPU_MMAP_SIZE. */
  constructor(fd: number, readonly vcpuMmapSize: number) {
    this.fdOrClosed = fd;
  }

  get fd(): number {
    if (this.fdOrClosed < 0) throw new Error('the VM fd is closed');
    return this.fdOrClosed;
  }

  /**
   * Maps guest physical [guestAddress, guestAddress + size) onto host memory
   * at hostAddress (page aligned). A size of 0 deletes the slot.
   */
  setUserMemoryRegion(
    slot: number, guestAddress: number | bigint, size: number | bigint, hostAddress: number | bigint, flags = 0,
  ): void {
    const region = encodeUserMemoryRegion({
      slot, flags,
      guestPhysAddr: BigInt(guestAddress), memorySize: BigInt(size), userspaceAddr: BigInt(hostAddress),
    });
    ioctlPtr(this.fd, KVM.SET_USER_MEMORY_REGION, region, 'KVM_SET_USER_MEMORY_REGION');
  }

  /**
   * Intel VMX needs three pages of guest physical space for a real-mode TSS;
   * they must not overlap RAM or MMIO (conventionally just below 4 GiB).
   */
  setTssAddress(address: number): void {
    ioctlInt(this.fd, KVM.SET_TSS_ADDR, address, 'KVM_SET_TSS_ADDR');
  }

  /** One page for VMX's identity-mapped page table (unrestricted-guest-less CPUs). */
  setIdentityMapAddress(address: number | bigint): void {
    const value = new Uint8Array(8);
    new DataView(value.buffer).setBigUint64(0, BigInt(address), true);
    ioctlPtr(this.fd, KVM.SET_IDENTITY_MAP_ADDR, value, 'KVM_SET_IDENTITY_MAP_ADDR');
  }

  /** In-kernel PIC (2 x 8259), IOAPIC and a local APIC per vCPU. Call before creating vCPUs. */
  createIrqchip(): void {
    ioctlInt(this.fd, KVM.CREATE_IRQCHIP, 0, 'KVM_CREATE_IRQCHIP');
  }

  /** In-kernel i8254 timer (needs the irqchip). */
  createPit2(flags = KVM_PIT_SPEAKER_DUMMY): void {
    ioctlPtr(this.fd, KVM.CREATE_PIT2, encodePitConfig(flags), 'KVM_CREATE_PIT2');
  }

  /** Drives interrupt line `irq` (a GSI) high or low. */
  setIrqLine(irq: number, high: boolean): void {
    ioctlPtr(this.fd, KVM.IRQ_LINE, encodeIrqLevel(irq, high ? 1 : 0), 'KVM_IRQ_LINE');
  }

  /** From now on, a write to eventfd `fd` raises (edge-triggers) interrupt `gsi`. */
  registerIrqfd(fd: number, gsi: number): void {
    ioctlPtr(this.fd, KVM.IRQFD, encodeIrqfd({ fd, gsi }), 'KVM_IRQFD');
  }

  unregisterIrqfd(fd: number, gsi: number): void {
    ioctlPtr(this.fd, KVM.IRQFD, encodeIrqfd({ fd, gsi, flags: KVM_IRQFD_FLAG_DEASSIGN }), 'KVM_IRQFD (deassign)');
  }

  /** From now on, matching guest writes signal `binding.fd` in the kernel; the vCPU does not exit. */
  registerIoeventfd(binding: IoEventFdBinding): void {
    ioctlPtr(this.fd, KVM.IOEVENTFD, this.encodeIoeventfd(binding, 0), 'KVM_IOEVENTFD');
  }

  unregisterIoeventfd(binding: IoEventFdBinding): void {
    ioctlPtr(this.fd, KVM.IOEVENTFD, this.encodeIoeventfd(binding, KVM_IOEVENTFD_FLAG_DEASSIGN),
      'KVM_IOEVENTFD (deassign)');
  }

  /** Creates vCPU `id` (its APIC id) and maps its kvm_run area. */
  createVcpu(id: number): VcpuFd {
    const fd = ioctlInt(this.fd, KVM.CREATE_VCPU, id, 'KVM_CREATE_VCPU');
    const vcpu = new VcpuFd(fd, id, this.vcpuMmapSize, () => this.vcpus.delete(vcpu));
    this.vcpus.add(vcpu);
    return vcpu;
  }

  /** Closes the vCPUs still open, then the VM fd. The VM dies when its last fd closes. */
  close(): void {
    if (this.fdOrClosed < 0) return;
    for (const vcpu of [...this.vcpus]) vcpu.close();
    const fd = this.fdOrClosed;
    this.fdOrClosed = -1;
    closeFd(fd);
  }

  private encodeIoeventfd(binding: IoEventFdBinding, extraFlags: number): Uint8Array {
    let flags = extraFlags;
    if (binding.pio) flags |= KVM_IOEVENTFD_FLAG_PIO;
    if (binding.datamatch !== undefined) flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
    return encodeIoeventfd({
      address: BigInt(binding.address),
      length: binding.length,
      fd: binding.fd,
      flags,
      datamatch: binding.datamatch === undefined ? 0n : BigInt(binding.datamatch),
    });
  }
}
