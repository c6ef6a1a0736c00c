import { describe, expect, it } from 'vitest';
import { patchCpuid, type CpuidEntry } from '../../../src/arch/x86_64/cpuid.js';
import { BootConfigError } from '../../../src/arch/x86_64/errors.js';
import { MAX_CPUS } from '../../../src/config/types.js';

const entry = (fn: number, index: number, regs: Partial<CpuidEntry> = {}): CpuidEntry =>
  ({ function: fn, index, flags: 0, eax: 0, ebx: 0, ecx: 0, edx: 0, ...regs });

// Vendor strings in leaf 0 EBX, EDX, ECX.
const intel = entry(0, 0, { eax: 0x1f, ebx: 0x756e6547, edx: 0x49656e69, ecx: 0x6c65746e });
const amd = entry(0, 0, { eax: 0x10, ebx: 0x68747541, edx: 0x69746e65, ecx: 0x444d4163 });
const find = (entries: CpuidEntry[], fn: number, index = 0) => entries.find((e) => e.function === fn && e.index === index)!;

describe('patchCpuid', () => {
  const leaf1 = entry(1, 0, { eax: 0x00a00f11, ebx: 0x07_10_08_00 | 0, ecx: 0x7ed8320b, edx: 0x178bfbff });

  it('gives each vCPU its APIC id and the vCPU count in leaf 1', () => {
    const patched = find(patchCpuid([intel, leaf1], 2, 4), 1);
    expect(patched.ebx >>> 24).toBe(2);
    expect((patched.ebx >>> 16) & 0xff).toBe(4);
    expect(patched.ebx & 0xffff).toBe(0x0800); // CLFLUSH size kept
    expect(patched.ecx >>> 31).toBe(1); // hypervisor
    expect(patched.edx & (1 << 28)).not.toBe(0); // HTT
    expect(patched.eax).toBe(0x00a00f11);
  });

  it('announces the TSC-deadline timer only when KVM emulates it', () => {
    // 0x7ed8320b has bit 24 clear, as KVM_GET_SUPPORTED_CPUID reports it.
    expect(find(patchCpuid([intel, leaf1], 0, 1), 1).ecx & (1 << 24)).toBe(0);
    const patched = find(patchCpuid([intel, leaf1], 0, 1, { tscDeadline: true }), 1);
    expect(patched.ecx).toBe((0x7ed8320b | (1 << 24) | (1 << 31)) >>> 0);
  });

  it('clears HTT for a single vCPU', () => {
    const patched = find(patchCpuid([intel, leaf1], 0, 1), 1);
    expect(patched.ebx >>> 16).toBe(1);
    expect(patched.edx & (1 << 28)).toBe(0);
  });

  it('does not modify its input', () => {
    const input = [intel, { ...leaf1 }];
    patchCpuid(input, 1, 2);
    expect(input[1]).toEqual(leaf1);
  });

  it('rewrites the extended topology leaves with x2APIC ids', () => {
    const host = [intel,
      entry(0xb, 0, { eax: 1, ebx: 2, ecx: 0x100, edx: 9 }),
      entry(0xb, 1, { eax: 7, ebx: 64, ecx: 0x201, edx: 9 }),
      entry(0xb, 2, { ecx: 2, edx: 9 }),
      entry(0x1f, 1, { eax: 7, ebx: 64, ecx: 0x201, edx: 9 })];
    const patched = patchCpuid(host, 3, 6);
    expect(find(patched, 0xb, 0)).toMatchObject({ eax: 0, ebx: 1, ecx: 0x100, edx: 3 });
    expect(find(patched, 0xb, 1)).toMatchObject({ eax: 3, ebx: 6, ecx: 0x201, edx: 3 });
    expect(find(patched, 0xb, 2)).toMatchObject({ eax: 0, ebx: 0, ecx: 2, edx: 3 });
    expect(find(patched, 0x1f, 1)).toMatchObject({ eax: 3, ebx: 6, ecx: 0x201, edx: 3 });
  });

  it('gives leaf 0xB its core level when KVM lists only the host\'s SMT level (AMD), so all vCPUs share one package', () => {
    // What KVM_GET_SUPPORTED_CPUID gave on the sandbox's emulated AMD CPU.
    const host = [amd, entry(0xb, 0, { flags: 1, ebx: 1, ecx: 0x100 })];
    const patched = patchCpuid(host, 1, 2);
    expect(patched.filter((e) => e.function === 0xb)).toEqual([
      { function: 0xb, index: 0, flags: 1, eax: 0, ebx: 1, ecx: 0x100, edx: 1 },
      { function: 0xb, index: 1, flags: 1, eax: 1, ebx: 2, ecx: 0x201, edx: 1 },
      { function: 0xb, index: 2, flags: 1, eax: 0, ebx: 0, ecx: 2, edx: 1 },
    ]);
  });

  it('keeps no host topology levels beyond tsvmm\'s', () => {
    const host = [intel, ...[0, 1, 2, 3].map((index) => entry(0x1f, index, { flags: 1, eax: 9, ebx: 99, ecx: 0x500 | index }))];
    expect(patchCpuid(host, 0, 4).filter((e) => e.function === 0x1f).map((e) => [e.index, e.ecx])).toEqual([
      [0, 0x100], [1, 0x201], [2, 2],
    ]);
  });

  it('sets core and sharing counts in the cache leaf', () => {
    const l1d = entry(4, 0, { eax: (0xf << 26) | (1 << 14) | (1 << 5) | 1 });
    const l3 = entry(4, 3, { eax: (0xf << 26) | (0x1f << 14) | (3 << 5) | 3 });
    const end = entry(4, 4);
    const patched = patchCpuid([intel, l1d, l3, end], 0, 3);
    expect(find(patched, 4, 0).eax).toBe(((3 << 26) | (1 << 5) | 1) >>> 0);
    expect(find(patched, 4, 3).eax).toBe(((3 << 26) | (3 << 14) | (3 << 5) | 3) >>> 0);
    expect(find(patched, 4, 4).eax).toBe(0);
  });

  it('patches the AMD topology leaves only on AMD', () => {
    const leaves = [entry(0x8000_0008, 0, { eax: 0x3030, ecx: 0x0000_f01f }), entry(0x8000_001e, 0, { eax: 0, ebx: 0x100 })];
    const onAmd = patchCpuid([amd, ...leaves], 2, 4);
    expect(find(onAmd, 0x8000_0008).ecx).toBe(0x0000_2003);
    expect(find(onAmd, 0x8000_0008).eax).toBe(0x3030);
    expect(find(onAmd, 0x8000_001e)).toMatchObject({ eax: 2, ebx: 2, ecx: 0 });
    const onIntel = patchCpuid([intel, ...leaves], 2, 4);
    expect(find(onIntel, 0x8000_0008).ecx).toBe(0x0000_f01f);
  });

  it('rejects impossible vCPU numbers', () => {
    expect(() => patchCpuid([], 4, 4)).toThrow(RangeError);
    expect(() => patchCpuid([], 0, MAX_CPUS + 1)).toThrow(BootConfigError);
  });
});
