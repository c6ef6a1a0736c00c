// `--cpus boot=2,affinity=[0@[0-1],1@[2]]`: which host CPUs each vCPU's
// thread may run on, in Cloud Hypervisor's syntax (its docs/cpu.md). A vCPU
// the list does not name runs wherever the host's scheduler puts it.
//
// Why a user wants it: to keep a guest's vCPUs off the cores a benchmark or
// another VM uses. Why tsvmm's own tests use it: in the nested sandbox
// (QEMU 7.2's multi-threaded TCG emulating AMD-V), a guest whose vCPUs run
// on different L1 CPUs sees stale code after the kernel patches its own text
// (README, "The nested sandbox's own stability"); on one L1 CPU it does not.
import { MAX_HOST_CPUS } from '../sys/thread-affinity.js';
import { ConfigError, type VcpuAffinity } from './types.js';
import { parseWholeNumber } from './values.js';

const EXAMPLE = 'affinity=[0@[0-1],1@[2]]';

/** One list entry: `VCPU@[HOST CPUS]`. */
const ENTRY = /([^,@[\]]*)@\[([^\]]*)\]/g;

/** `[0@[0-1],1@[2]]`: vCPU 0 on host CPUs 0 and 1, vCPU 1 on host CPU 2. Syntax only: validateCpuAffinity() checks the numbers. */
export function parseCpuAffinity(text: string): VcpuAffinity[] {
  const list = /^\[(.*)\]$/.exec(text)?.[1];
  const entries = list === undefined ? [] : [...list.matchAll(ENTRY)];
  // The entries, joined by commas, must be the whole list: nothing else in between.
  if (entries.length === 0 || entries.map((entry) => entry[0]).join(',') !== list) {
    throw affinityError(`"${text}" is not a list of VCPU@[HOST CPUS] in brackets`);
  }
  return entries.map(([, vcpu, hostCpus]) => ({ vcpu: affinityNumber(vcpu!), hostCpus: parseCpuRanges(hostCpus!) }));
}

/** `0-1,4`: host CPUs 0, 1 and 4, in ascending order, each once. */
function parseCpuRanges(text: string): number[] {
  if (text === '') throw affinityError('a vCPU needs at least one host CPU');
  const cpus = new Set<number>();
  for (const range of text.split(',')) {
    const [first, last = first, extra] = range.split('-');
    if (extra !== undefined) throw affinityError(`"${range}" is not a CPU or a range of CPUs`);
    const from = affinityNumber(first!);
    const to = affinityNumber(last!);
    if (to < from) throw affinityError(`the range "${range}" runs backwards`);
    for (let cpu = from; cpu <= to && cpu < MAX_HOST_CPUS; cpu++) cpus.add(cpu);
    if (to >= MAX_HOST_CPUS) cpus.add(to); // reported by validateCpuAffinity()
  }
  return [...cpus].sort((a, b) => a - b);
}

function affinityNumber(text: string): number {
  return parseWholeNumber('--cpus', 'affinity', text.trim());
}

/**
 * Checks an affinity against the vCPU count (`bootCpus`, already checked
 * by validate.ts) and this host's CPUs (`hostCpuCount`: its online CPUs,
 * os.cpus().length).
 */
export function validateCpuAffinity(affinity: readonly VcpuAffinity[], bootCpus: number, hostCpuCount: number): void {
  const seen = new Set<number>();
  for (const { vcpu, hostCpus } of affinity) {
    if (!Number.isInteger(vcpu) || vcpu < 0 || vcpu >= bootCpus) {
      throw affinityError(`vCPU ${vcpu} does not exist (boot=${bootCpus}: vCPUs 0 to ${bootCpus - 1})`);
    }
    if (seen.has(vcpu)) throw affinityError(`vCPU ${vcpu} is given twice`);
    seen.add(vcpu);
    if (!Array.isArray(hostCpus) || hostCpus.length === 0) throw affinityError(`vCPU ${vcpu} needs at least one host CPU`);
    for (const cpu of hostCpus) {
      if (!Number.isInteger(cpu) || cpu < 0 || cpu >= hostCpuCount) {
        throw affinityError(`host CPU ${cpu} (for vCPU ${vcpu}) does not exist: this host has CPUs 0 to ${hostCpuCount - 1}`);
      }
    }
  }
}

function affinityError(problem: string): ConfigError {
  return new ConfigError(`--cpus: affinity: ${problem} (e.g. --cpus boot=2,${EXAMPLE})`);
}
