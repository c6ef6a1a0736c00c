// CPUID for one vCPU. KVM_GET_SUPPORTED_CPUID describes what the host and
// KVM can offer, but with the host's topology (APIC ids, core counts) or
// with topology leaves zeroed. Each vCPU must see its own APIC id and one
// consistent topology, or Linux miscounts CPUs or gives two of them the same
// id. tsvmm's topology: one package, one core per vCPU, one thread per core,
// APIC ids 0..n-1 (the MP table, mptable.ts, lists the same ids).
// Leaf formats: Intel SDM vol. 2A "CPUID"; AMD APM vol. 3 appendix E.

/** struct kvm_cpuid_entry2 (without padding), as the KVM layer lays it out. */
export type { CpuidEntry } from '../../kvm/structs/cpu-state.js';
import { KVM_CPUID_FLAG_SIGNIFCANT_INDEX, type CpuidEntry } from '../../kvm/structs/cpu-state.js';
import { checkCpuCount } from './layout.js';

/** Leaf 1 EDX bit 28 (HTT): "EBX[23:16] counts logical processors in this package". */
export const CPUID_1_EDX_HTT = 1 << 28;
/**
 * Leaf 1 ECX bit 24: the LAPIC timer has TSC-deadline mode. KVM emulates it
 * but never reports it in KVM_GET_SUPPORTED_CPUID (api.rst): the VMM sets it
 * when KVM_CAP_TSC_DEADLINE_TIMER is there. Without it Linux calibrates the
 * LAPIC timer against the PIT, which on a starved vCPU fails ("APIC timer
 * disabled due to verification failure") and costs boot time.
 */
export const CPUID_1_ECX_TSC_DEADLINE = 1 << 24;
/** Leaf 1 ECX bit 31: running under a hypervisor (Linux then looks for KVM at 0x40000000). */
export const CPUID_1_ECX_HYPERVISOR = 1 << 31;

// Level types in leaves 0xB / 0x1F / 0x8000_0026 ECX[15:8].
const LEVEL_TYPE_SMT = 1;
const LEVEL_TYPE_CORE = 2;

/** The extended topology leaves: one subleaf per level, ended by an invalid one. */
const EXTENDED_TOPOLOGY_LEAVES = new Set([0xb, 0x1f, 0x8000_0026]);
/** tsvmm's levels in those leaves: SMT, core, then the terminator. */
const EXTENDED_TOPOLOGY_SUBLEAVES = [0, 1, 2];

export interface CpuidOptions {
  /** KVM emulates the TSC-deadline timer (KVM_CAP_TSC_DEADLINE_TIMER). */
  readonly tscDeadline?: boolean;
}

/** Returns patched copies of `entries` for vCPU `vcpuIndex` of `vcpuCount`; the input is not modified. */
export function patchCpuid(
  entries: readonly CpuidEntry[], vcpuIndex: number, vcpuCount: number, options: CpuidOptions = {},
): CpuidEntry[] {
  checkCpuCount(vcpuCount);
  if (!Number.isInteger(vcpuIndex) || vcpuIndex < 0 || vcpuIndex >= vcpuCount) {
    throw new RangeError(`vCPU index ${vcpuIndex} is out of range 0..${vcpuCount - 1}`);
  }
  const topology = { apicId: vcpuIndex, count: vcpuCount, idBits: bitsFor(vcpuCount) };
  const amd = isAmdLike(entries);
  return withEveryTopologyLevel(entries).map((original) => {
    const entry = { ...original };
    switch (entry.function) {
      case 0x1: patchLeaf1(entry, topology, options); break;
      case 0x4: patchCacheLeaf(entry, topology); break;
      case 0xb: case 0x1f: case 0x8000_0026: patchExtendedTopology(entry, topology); break;
      case 0x8000_0008: if (amd) patchAmdCoreCount(entry, topology); break;
      case 0x8000_001e: if (amd) patchAmdTopologyExtensions(entry, topology); break;
    }
    return entry;
  });
}

/**
 * Gives each extended topology leaf KVM lists exactly tsvmm's subleaves. KVM
 * copies the host's levels, which need not include a core level: on an AMD
 * host of this project's sandbox it lists only subleaf 0 of leaf 0xB, and
 * the guest, finding no core level, made each vCPU a package of its own
 * (and then, on a CPU without a constant TSC, distrusted its TSC as
 * "unsynchronized" across packages, which QEMU's guests did not).
 */
function withEveryTopologyLevel(entries: readonly CpuidEntry[]): readonly CpuidEntry[] {
  const result: CpuidEntry[] = [];
  const done = new Set<number>();
  for (const entry of entries) {
    if (!EXTENDED_TOPOLOGY_LEAVES.has(entry.function)) {
      result.push(entry);
    } else if (!done.has(entry.function)) {
      done.add(entry.function);
      const flags = entry.flags | KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
      for (const index of EXTENDED_TOPOLOGY_SUBLEAVES) result.push({ ...entry, index, flags });
    }
  }
  return result;
}

interface Topology {
  readonly apicId: number;
  readonly count: number;
  /** APIC id bits the package spans: ceil(log2(count)). */
  readonly idBits: number;
}

function bitsFor(count: number): number {
  return count <= 1 ? 0 : Math.ceil(Math.log2(count));
}

/** "AuthenticAMD" or "HygonGenuine" in leaf 0 EBX-EDX-ECX. */
function isAmdLike(entries: readonly CpuidEntry[]): boolean {
  const leaf0 = entries.find((e) => e.function === 0);
  if (!leaf0) return false;
  const bytes = new Uint8Array(12);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, leaf0.ebx, true);
  view.setUint32(4, leaf0.edx, true);
  view.setUint32(8, leaf0.ecx, true);
  const vendor = new TextDecoder().decode(bytes);
  return vendor === 'AuthenticAMD' || vendor === 'HygonGenuine';
}

/**
 * Leaf 1: EBX[31:24] is the initial APIC id, EBX[23:16] the logical
 * processor count of the package (valid when HTT is set, so HTT follows the
 * count). ECX.hypervisor is set so the guest enables its KVM paravirt code.
 */
function patchLeaf1(entry: CpuidEntry, t: Topology, options: CpuidOptions): void {
  entry.ebx = ((entry.ebx & 0x0000_ffff) | ((t.count & 0xff) << 16) | (t.apicId << 24)) >>> 0;
  entry.ecx = (entry.ecx | CPUID_1_ECX_HYPERVISOR | (options.tscDeadline ? CPUID_1_ECX_TSC_DEADLINE : 0)) >>> 0;
  entry.edx = (t.count > 1 ? entry.edx | CPUID_1_EDX_HTT : entry.edx & ~CPUID_1_EDX_HTT) >>> 0;
}

/**
 * Leaf 4 (Intel deterministic cache parameters): EAX[31:26] is the number of
 * core ids in the package - 1, and Linux falls back on it for core counts;
 * EAX[25:14] is how many ids share the cache - 1 (cacheinfo builds its
 * shared_cpu_map from it). With one thread per core, L1/L2 are private and
 * the L3 is shared by the whole package. Subleaves with cache type 0 end the
 * list and stay as they are.
 */
function patchCacheLeaf(entry: CpuidEntry, t: Topology): void {
  if ((entry.eax & 0x1f) === 0) return;
  const level = (entry.eax >>> 5) & 0x7;
  const ids = 1 << t.idBits;
  const sharing = level >= 3 ? ids - 1 : 0;
  entry.eax = ((entry.eax & 0x3fff) | ((sharing & 0xfff) << 14) | (((ids - 1) & 0x3f) << 26)) >>> 0;
}

/**
 * Leaves 0xB / 0x1F (and AMD's 0x8000_0026, same layout for these fields):
 * EDX is the x2APIC id; subleaf 0 is the SMT level (1 thread, shift 0),
 * subleaf 1 the core level (all vCPUs, shift = id bits); higher subleaves
 * are the "invalid" terminator. Linux takes the package id as
 * apic id >> (core level shift), so the shift must cover every vCPU.
 */
function patchExtendedTopology(entry: CpuidEntry, t: Topology): void {
  const subleaf = entry.index;
  entry.edx = t.apicId;
  if (subleaf === 0) {
    entry.eax = 0;
    entry.ebx = 1;
    entry.ecx = (LEVEL_TYPE_SMT << 8) | subleaf;
  } else if (subleaf === 1) {
    entry.eax = t.idBits;
    entry.ebx = t.count;
    entry.ecx = (LEVEL_TYPE_CORE << 8) | subleaf;
  } else {
    entry.eax = 0;
    entry.ebx = 0;
    entry.ecx = subleaf & 0xff;
  }
}

/**
 * AMD leaf 0x8000_0008 ECX: [7:0] threads in the package - 1, [15:12] APIC
 * id bits per package. Linux uses it when leaf 0xB is absent
 * (arch/x86/kernel/cpu/topology_amd.c, parse_8000_0008).
 */
function patchAmdCoreCount(entry: CpuidEntry, t: Topology): void {
  entry.ecx = ((entry.ecx & ~0xf0ff) | ((t.count - 1) & 0xff) | ((t.idBits & 0xf) << 12)) >>> 0;
}

/**
 * AMD leaf 0x8000_001E (topology extensions): EAX is the extended APIC id,
 * which Linux trusts when leaf 0xB is absent; KVM reports it zeroed, which
 * would give every vCPU APIC id 0. EBX: core id = APIC id, 1 thread per
 * core; ECX: node 0, one node per package.
 */
function patchAmdTopologyExtensions(entry: CpuidEntry, t: Topology): void {
  entry.eax = t.apicId;
  entry.ebx = t.apicId & 0xff;
  entry.ecx = 0;
}
