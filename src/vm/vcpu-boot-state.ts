// The state each vCPU starts in, applied through KVM before its worker runs:
// CPUID (patched per vCPU), MSRs, FPU, the local APIC's LINT0/LINT1 wiring,
// and, for the boot CPU only, the 64-bit boot protocol's registers. The other
// vCPUs wait in KVM's in-kernel APIC for the boot CPU's INIT/SIPI, which is
// how Linux brings up secondary CPUs it found in the MP table.
import { bootMsrs, bootRegisters, bootSpecialRegisters, patchCpuid, setLapicLocalInterrupts } from '../arch/x86_64/index.js';
import type { BootMemory } from '../arch/x86_64/index.js';
import { defaultFpu, type CpuidEntry } from '../kvm/structs/cpu-state.js';
import type { VcpuFd } from '../kvm/vcpu-fd.js';

export interface VcpuBootInput {
  readonly supportedCpuid: readonly CpuidEntry[];
  readonly vcpuCount: number;
  /** KVM emulates the LAPIC's TSC-deadline mode (KVM_CAP_TSC_DEADLINE_TIMER). */
  readonly tscDeadline: boolean;
  /** Set for the boot CPU (index 0). */
  readonly boot?: BootMemory;
}

export function applyVcpuBootState(vcpu: VcpuFd, input: VcpuBootInput): void {
  vcpu.setCpuid2(patchCpuid(input.supportedCpuid, vcpu.id, input.vcpuCount, { tscDeadline: input.tscDeadline }));
  vcpu.setMsrs(bootMsrs());
  vcpu.setFpu(defaultFpu());
  vcpu.setLapic(setLapicLocalInterrupts(vcpu.getLapic()));
  if (input.boot === undefined) return;

  // Start from what KVM reports so that fields tsvmm does not set (APIC
  // base, CR8, the pending-interrupt bitmap) keep KVM's values.
  vcpu.setSregs({ ...vcpu.getSregs(), ...bootSpecialRegisters() });
  vcpu.setRegs(bootRegisters(input.boot.entry, input.boot.zeroPage));
}
