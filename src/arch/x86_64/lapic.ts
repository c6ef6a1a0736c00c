// Local APIC wiring at boot. A PC firmware programs the boot CPU's LAPIC in
// "virtual wire" mode: LINT0 receives the 8259 PIC's interrupts (ExtINT) and
// LINT1 receives NMIs. Linux expects to find it so until it sets up the
// IOAPIC (arch/x86/kernel/apic/apic.c, "virtual wire"), and the MP table
// (mptable.ts) describes the same wiring.
// Register layout: Intel SDM vol. 3, 11.5.1 "Local Vector Table".

import {
  LAPIC_STATE_SIZE, LapicDeliveryMode, LapicRegister, readLapicRegister, writeLapicRegister,
} from '../../kvm/structs/cpu-state.js';

/** LVT delivery mode field, bits 10..8. */
const DELIVERY_MODE_SHIFT = 8;
const DELIVERY_MODE_MASK = 0x7 << DELIVERY_MODE_SHIFT;

/**
 * Sets LINT0 to ExtINT and LINT1 to NMI in `state` (the bytes of a
 * kvm_lapic_state from KVM_GET_LAPIC), changing only the delivery-mode bits,
 * and returns it for KVM_SET_LAPIC.
 */
export function setLapicLocalInterrupts(state: Uint8Array): Uint8Array {
  if (state.byteLength !== LAPIC_STATE_SIZE) {
    throw new RangeError(`kvm_lapic_state must be ${LAPIC_STATE_SIZE} bytes, got ${state.byteLength}`);
  }
  const setMode = (offset: number, mode: number) => {
    const value = readLapicRegister(state, offset);
    writeLapicRegister(state, offset, (value & ~DELIVERY_MODE_MASK) | (mode << DELIVERY_MODE_SHIFT));
  };
  setMode(LapicRegister.LVT_LINT0, LapicDeliveryMode.EXTINT);
  setMode(LapicRegister.LVT_LINT1, LapicDeliveryMode.NMI);
  return state;
}
