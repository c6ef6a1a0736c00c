// How a device raises its interrupt. In a running VM this writes to a
// KVM_IRQFD eventfd (the in-kernel IOAPIC delivers it without a vCPU exit);
// in tests it is a counter. Edge semantics: each trigger() is one interrupt.
export interface InterruptLine {
  trigger(): void;
}
