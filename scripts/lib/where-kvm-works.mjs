// Runs a script's main function where KVM can boot Linux: right here when
// the host has hardware KVM or we are already inside the sandbox, otherwise
// by re-running the same script inside the nested sandbox, saying so.
// Used by the demo and the benchmarks:
//
//   process.exitCode = await runWhereKvmWorks(import.meta.url, main);
import { fileURLToPath } from 'node:url';
import { buildGuestImages } from '../build-guest-images.mjs';
import { hostKvmKind, insideSandbox } from './host-kvm.mjs';
import { step } from './progress.mjs';
import { runInSandbox, shellCommand } from '../sandbox.mjs';

/**
 * Resolves with the exit status: main()'s (0 unless it throws or returns one)
 * or the sandbox's. `rerunArgs` are added to the script's arguments when it
 * is re-run inside the sandbox (e.g. to skip work already done outside).
 */
export async function runWhereKvmWorks(scriptUrl, main, { rerunArgs = [] } = {}) {
  const kvm = hostKvmKind();
  // Inside the sandbox the image cache is not visible: the caller built them.
  if (!insideSandbox) {
    step('guest images');
    await buildGuestImages({ sandbox: kvm !== 'hardware', full: false });
  }
  if (kvm === 'hardware' || insideSandbox) return (await main()) ?? 0;

  step(`this host's /dev/kvm is ${kvm === 'pvm' ? 'PVM, which cannot boot a stock Linux kernel' : 'missing'}: ` +
    'running inside the nested sandbox (npm run sandbox), where KVM works');
  const command = shellCommand([process.execPath, fileURLToPath(scriptUrl), ...process.argv.slice(2), ...rerunArgs]);
  return runInSandbox(command, { cwd: process.cwd() });
}
