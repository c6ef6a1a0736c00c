// Local APIC wiring at boot. A PC firmware programs the boot CPU's LAPIC in
// "virtual wire" mode: LINT0 receives the 8259 PIC's interrupts (ExtINT) and
// LINT1 receives NMIs. Linux expects to find it so until it sets up the
// IOAPIC (arch/x86/kernel/apic/apic.c, "virtual wire"), and the MP table
// (mptable.ts) describes the same wiring.
// Register layout: Intel SDM vol. 3, 11.5.1 "Local Vector Table".

/** Size of struct kvm_lapic_state: the APIC's 4 KiB register page, of which KVM passes the first 1 KiB. */
export const LAPIC_STATE_SIZE = 1024;
/** LVT LINT0 and LINT1 register offsets. */
export const APIC_LVT_LINT0 = 0x350;
export const APIC_LVT_LINT1 = 0x360;
/** LVT delivery mode field, bits 10..8. */
const DELIVERY_MODE_MASK = 0x700;
export const APIC_DELIVERY_MODE_NMI = 0b100;
export const APIC_DELIVERY_MODE_EXTINT = 0b111;

/**
 * Sets LINT0 to ExtINT and LINT1 to NMI in `state` (the bytes of a
 * kvm_lapic_state from KVM_GET_LAPIC), changing only the delivery-mode bits,
 * and returns it for KVM_SET_LAPIC.
 */
export function setLapicLocalInterrupts(state: Uint8Array): Uint8Array {
  if (state.byteLength !== LAPIC_STATE_SIZE) {
    throw new RangeError(`kvm_lapic_state must be ${LAPIC_STATE_SIZE} bytes, got ${state.byteLength}`);
  }
  const view = new DataView(state.buffer, state.byteOffset, state.byteLength);
  const setMode = (offset: number, mode: number) => {
    const value = view.getUint32(offset, true);
    view.setUint32(offset, ((value & ~DELIVERY_MODE_MASK) | (mode << 8)) >>> 0, true);
  };
  setMode(APIC_LVT_LINT0, APIC_DELIVERY_MODE_EXTINT);
  setMode(APIC_LVT_LINT1, APIC_DELIVERY_MODE_NMI);
  return state;
}
