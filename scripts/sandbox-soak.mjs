#!/usr/bin/env node
// Measures how often guests die in the nested sandbox, for one sandbox
// configuration, optionally while CPU hogs load the host (as CI machines are).
// Each round is one sandbox session that boots the default guest BOOTS times
// under tsvmm and under QEMU in turn (scripts/lib/soak-boots.mjs); a round
// whose L1 machine dies is counted as a sandbox death.
//
//   npm run sandbox:soak -- --rounds 3 --boots 20 --load 2
//   npm run sandbox:soak -- --tcg single --cpu-model EPYC --l1-append kvm_amd.npt=0
//   npm run sandbox:soak -- --guest full --guest-cpus 2 --pin-vcpus
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { DEFAULT_CPU_MODEL, DEFAULT_TCG_THREADS, runInSandbox, shellCommand, SANDBOX_DIED } from './sandbox.mjs';
import { parseFlags } from './lib/options.mjs';

const USAGE = `usage: npm run sandbox:soak -- [options]
  --rounds N        sandbox sessions (default 3)
  --boots N         boots per VMM per session (default 20)
  --vmm WHICH       tsvmm, qemu or both (default both)
  --guest-cpus N    vCPUs of each guest (default 1)
  --guest NAME      default or full (the fuller ACPI kernel; default default)
  --load N          CPU hogs on the host while it runs (default 0)
  --l1-load N       CPU hogs inside the sandbox, next to the guests (default 0)
  --cpu-model NAME  the sandbox's emulated CPU (default ${DEFAULT_CPU_MODEL})
  --tcg MODE        multi or single threaded TCG (default ${DEFAULT_TCG_THREADS})
  --l1-append ARGS  extra sandbox kernel parameters, space-separated
  --guest-append ARGS  extra guest kernel parameters for both VMMs (after
                    quiet; pad=N is one N-character parameter), e.g.
                    'earlyprintk=ttyS0 loglevel=8 pad=2000'
  --cpus N          sandbox (L1) vCPUs (default 2)
  --pin-vcpus       run each guest's vCPUs on sandbox CPU 0, as the tests do
                    (tsvmm --cpus affinity=, QEMU under taskset -c 0)`;

const flags = parseFlags(process.argv.slice(2), {
  rounds: 3, boots: 20, vmm: 'both', 'guest-cpus': 1, guest: 'default', load: 0, 'l1-load': 0, 'cpu-model': DEFAULT_CPU_MODEL, tcg: DEFAULT_TCG_THREADS, 'l1-append': '', 'guest-append': '', cpus: 2, 'pin-vcpus': false,
}, USAGE);

/** Busy loops in child processes, for a loaded host. */
function startHogs(count) {
  return Array.from({ length: count }, () => spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
}

const tally = new Map();
const count = (key) => tally.set(key, (tally.get(key) ?? 0) + 1);
const failures = [];
const hogs = startHogs(flags.load);
const stopHogs = () => hogs.forEach((hog) => hog.kill('SIGKILL'));
process.on('exit', stopHogs);
const started = Date.now();
try {
  for (let round = 0; round < flags.rounds; round++) {
    let pending = '';
    const lines = new Writable({
      write(chunk, _encoding, done) {
        pending += chunk;
        let newline;
        while ((newline = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, newline);
          pending = pending.slice(newline + 1);
          const soak = /^SOAK (\{.*\})\s*$/.exec(line);
          if (!soak) continue;
          const result = JSON.parse(soak[1]);
          count(`${result.vmm} ${result.outcome}`);
          if (result.outcome !== 'ok') failures.push({ round, ...result });
          process.stdout.write(result.outcome === 'ok' ? '.' : result.outcome[0].toUpperCase());
        }
        done();
      },
    });
    const command = shellCommand(['node', 'scripts/lib/soak-boots.mjs', String(flags.boots), flags.vmm, String(flags['guest-cpus']), flags.guest, String(flags['l1-load']), flags['guest-append'], flags['pin-vcpus'] ? 'pin' : '']);
    const status = await runInSandbox(command, {
      output: lines, timeoutSeconds: 600 + flags.boots * 240, cpus: flags.cpus,
      cpuModel: flags['cpu-model'], tcgThreads: flags.tcg, l1Parameters: flags['l1-append'].split(/\s+/).filter(Boolean),
    });
    count(status === SANDBOX_DIED ? 'sandbox died' : status === 0 ? 'sandbox ok' : `sandbox exit ${status}`);
    process.stdout.write(` round ${round + 1}: sandbox exit ${status}\n`);
  }
} finally {
  stopHogs();
}
console.log(`\nconfiguration: ${JSON.stringify(flags)}; ${((Date.now() - started) / 60000).toFixed(1)} min`);
for (const [key, value] of [...tally].sort()) console.log(`  ${key.padEnd(16)} ${value}`);
for (const failure of failures) console.log(`  ${failure.vmm} ${failure.outcome} (round ${failure.round}, boot ${failure.i}, ${failure.seconds}s, exit ${failure.code}): ${failure.tail}`);
