// Puts virtio devices on the MMIO bus, one 4 KiB slot each (addresses and
// IRQs from arch/x86_64/layout.ts), and wires the two fast paths that keep
// the data path free of vCPU exits:
//   - QueueNotify: a KVM_IOEVENTFD per queue (datamatch = queue index), so a
//     guest kick signals an eventfd, watched on this thread, instead of
//     exiting to a vCPU worker;
//   - the interrupt: a KVM_IRQFD, so raising it is one eventfd write.
// The guest learns about each slot from `virtio_mmio.device=` on its
// command line (kernels without ACPI) or from the ACPI tables' DSDT
// (src/arch/x86_64/acpi/dsdt.ts).
import { virtioMmioParam, virtioMmioSlot, type VirtioMmioSlot } from '../arch/x86_64/index.js';
import type { Bus } from '../bus/bus.js';
import type { VirtioDevice } from '../devices/virtio/device.js';
import { MmioRegister, MmioTransport, VIRTIO_MMIO_REGION_SIZE } from '../devices/virtio/mmio-transport.js';
import { EventFd } from '../sys/eventfd.js';
import type { FdWatcher } from '../sys/fd-watcher.js';
import type { VmFd } from '../kvm/vm-fd.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { IrqfdLine } from './irq-line.js';

export interface PlacedVirtioDevice {
  readonly device: VirtioDevice;
  readonly transport: MmioTransport;
  readonly slot: VirtioMmioSlot;
  /** `virtio_mmio.device=4K@0x...:IRQ` for the kernel command line. */
  readonly kernelParameter: string;
  /** Unwires the eventfds; the device itself is closed by its owner. */
  detach(): void;
}

export interface VirtioPlacement {
  readonly vm: VmFd;
  readonly mmio: Bus;
  readonly memory: GuestMemory;
  readonly watcher: FdWatcher;
  /** Applies every write the vCPUs have posted (VcpuSet.drainPostedWrites); called before a device handles a kick. */
  readonly drainPostedWrites: () => void;
}

export function placeVirtioDevice(where: VirtioPlacement, device: VirtioDevice, slotIndex: number): PlacedVirtioDevice {
  const { vm, mmio, memory, watcher, drainPostedWrites } = where;
  const slot = virtioMmioSlot(slotIndex);
  const irq = new IrqfdLine(vm, slot.irq);
  const transport = new MmioTransport(device, memory, irq);
  mmio.register(slot.base, VIRTIO_MMIO_REGION_SIZE, transport, `virtio-mmio ${device.name}`);

  const notifyAddress = slot.base + MmioRegister.QueueNotify;
  const doorbells = device.queueMaxSizes.map((_, queueIndex) => {
    const doorbell = EventFd.create();
    vm.registerIoeventfd({ fd: doorbell.fd, address: notifyAddress, length: 4, datamatch: queueIndex });
    watcher.watch(doorbell.fd, () => {
      // Consume first: the watcher is level-triggered, and several kicks may
      // have been folded into one counter value; one notify serves them all.
      doorbell.consume();
      // Then apply the writes the guest posted before those kicks (e.g.
      // QueueReady or DRIVER_OK just before the first kick): the ordering
      // rule of src/vcpu/vcpu-set.ts.
      drainPostedWrites();
      transport.notifyQueue(queueIndex);
    });
    return { doorbell, queueIndex };
  });

  return {
    device, transport, slot,
    kernelParameter: virtioMmioParam(slot),
    detach() {
      for (const { doorbell, queueIndex } of doorbells) {
        watcher.unwatch(doorbell.fd);
        vm.unregisterIoeventfd({ fd: doorbell.fd, address: notifyAddress, length: 4, datamatch: queueIndex });
        doorbell.close();
      }
      irq.close();
    },
  };
}
