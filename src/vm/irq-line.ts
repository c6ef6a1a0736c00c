// An interrupt line wired through KVM_IRQFD: signalling the eventfd makes
// KVM's in-kernel IOAPIC deliver the interrupt, without a vCPU exit and
// without a syscall into KVM from us beyond the eventfd write.
import type { InterruptLine } from '../devices/interrupt-line.js';
import { EventFd } from '../sys/eventfd.js';
import type { VmFd } from '../kvm/vm-fd.js';

export class IrqfdLine implements InterruptLine {
  private readonly eventFd = EventFd.create();

  constructor(private readonly vm: VmFd, readonly gsi: number) {
    vm.registerIrqfd(this.eventFd.fd, gsi);
  }

  trigger(): void {
    this.eventFd.signal();
  }

  close(): void {
    this.vm.unregisterIrqfd(this.eventFd.fd, this.gsi);
    this.eventFd.close();
  }
}
