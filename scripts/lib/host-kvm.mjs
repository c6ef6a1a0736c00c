// What kind of KVM this host offers, which decides where real Linux guests
// can boot: directly ('hardware'), or only inside the nested sandbox ('pvm':
// the page-table based PVM module, which cannot run a stock Linux kernel
// (see docs/architecture.md, "The development machines"), or 'none').
import { accessSync, constants, existsSync } from 'node:fs';

export function hostKvmKind() {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return 'none';
  }
  if (existsSync('/sys/module/kvm_pvm')) return 'pvm';
  if (existsSync('/sys/module/kvm_intel') || existsSync('/sys/module/kvm_amd')) return 'hardware';
  return 'none';
}

/** True inside the nested sandbox (its init exports this). */
export const insideSandbox = process.env.TSVMM_IN_SANDBOX === '1';
