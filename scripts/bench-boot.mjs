#!/usr/bin/env node
// Boot benchmark: time from starting the VMM to the guest's /init running a
// command (it prints a marker), and to the VMM's exit after the guest ends,
// for tsvmm and for QEMU microvm with the same kernel, initramfs and command
// line, in the same run (inside the sandbox when the host's KVM cannot boot
// Linux). For tsvmm also its own boot timer (--boot-timer: first
// instruction and init's start, from tsvmm's process start). Prints medians
// with min-max and the tsvmm/QEMU ratio of the medians.
//
//   npm run bench:boot [-- --runs N]
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseFlags } from './lib/options.mjs';
import { QEMU_PROGRAM, qemuMicrovmArguments } from './lib/qemu-microvm.mjs';
import { formatRow, median, medianAndSpread } from './lib/stats.mjs';
import { runWhereKvmWorks } from './lib/where-kvm-works.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = (name) => join(root, 'guest-images', 'out', name);
const USAGE = `usage: npm run bench:boot [-- --runs N]

Boots the default guest under tsvmm and QEMU microvm (inside the nested
sandbox when this host's KVM cannot boot Linux) and reports the time to
init and to exit, medians [min-max] over the runs, and their ratio.

  --runs N   boots of each VMM (default 5)`;
const { runs } = parseFlags(process.argv.slice(2), { runs: 5 }, USAGE);
const MARKER = 'tsvmm-bench-init-reached';

const BOOT_TIMER_LINE = /boot timer: first instruction at (\d+) ms, init at (\d+) ms/;
/** The boot timer line's breakdown of tsvmm's start-up: `Node and imports 133 ms, VM and devices 14 ms, ...`. */
const START_UP_PHASE = /([A-Za-z][A-Za-z ]*?) (\d+) ms(?=,|\))/g;

function timeBoot(command, args) {
  return new Promise((done, fail) => {
    const start = process.hrtime.bigint();
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let initMs;
    child.stdout.on('data', (chunk) => {
      output += chunk;
      if (initMs === undefined && output.includes(MARKER)) initMs = Number(process.hrtime.bigint() - start) / 1e6;
    });
    child.stderr.on('data', (chunk) => { output += chunk; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const exitMs = Number(process.hrtime.bigint() - start) / 1e6;
      const timerLine = output.match(BOOT_TIMER_LINE);
      const breakdown = output.slice(output.indexOf('to the first instruction: '));
      const phases = [...breakdown.matchAll(START_UP_PHASE)].map(([, name, ms]) => ({ name, ms: Number(ms) }));
      const bootTimer = timerLine ? { firstInstructionMs: Number(timerLine[1]), initMs: Number(timerLine[2]), phases } : undefined;
      if (initMs === undefined) fail(new Error(`${command} never reached init (exit ${code}):\n${output.slice(-2000)}`));
      else done({ initMs, exitMs, bootTimer });
    });
  });
}

const cmdline = `quiet -- echo ${MARKER}`;
const vmms = {
  tsvmm: () => timeBoot(process.execPath, [join(root, 'dist/cli.js'), '--boot-timer', '--kernel', out('vmlinux'),
    '--initramfs', out('initramfs.cpio.gz'), '--memory', 'size=256M', '--cmdline', cmdline]),
  'qemu microvm': () => timeBoot(QEMU_PROGRAM, qemuMicrovmArguments({
    kernel: out('vmlinux'), initramfs: out('initramfs.cpio.gz'), kernelParameters: cmdline,
  })),
};

async function measure() {
  const results = {};
  for (const name of Object.keys(vmms)) results[name] = [];
  for (let i = 0; i < runs; i++) {
    // Interleave the VMMs so that machine noise hits both alike.
    for (const [name, boot] of Object.entries(vmms)) results[name].push(await boot());
  }
  console.log(`boot, ${runs} runs each, median [min-max] in ms, from spawning the VMM (same kernel, initramfs, 256 MiB, 1 vCPU):`);
  const widths = [14, 22, 22];
  console.log(formatRow(['vmm', 'to init marker', 'to exit'], widths));
  const summary = {};
  for (const [name, samples] of Object.entries(results)) {
    const init = samples.map((s) => s.initMs);
    const exit = samples.map((s) => s.exitMs);
    summary[name] = { init: median(init), exit: median(exit) };
    console.log(formatRow([name, medianAndSpread(init), medianAndSpread(exit)], widths));
  }
  const ratio = (key) => (summary.tsvmm[key] / summary['qemu microvm'][key]).toFixed(2);
  console.log(formatRow(['tsvmm / qemu', ratio('init'), ratio('exit')], widths));
  const timers = results.tsvmm.map((s) => s.bootTimer).filter(Boolean);
  if (timers.length === results.tsvmm.length) {
    const first = timers.map((t) => t.firstInstructionMs);
    const init = timers.map((t) => t.initMs);
    console.log(`tsvmm's boot timer (from its process start): first instruction ${medianAndSpread(first)}, init ${medianAndSpread(init)}; ` +
      `init vs QEMU's init marker: ${(median(init) / summary['qemu microvm'].init).toFixed(2)}`);
    const names = timers[0].phases.map((phase) => phase.name);
    if (names.length > 0) {
      const phase = (name) => timers.map((t) => t.phases.find((p) => p.name === name)?.ms ?? Number.NaN);
      console.log(`tsvmm's start-up to the first instruction: ${names.map((name) => `${name} ${medianAndSpread(phase(name))}`).join(', ')}`);
    }
  } else {
    console.log(`tsvmm's boot timer: missing in ${results.tsvmm.length - timers.length} of ${results.tsvmm.length} runs`);
  }
}

process.exitCode = await runWhereKvmWorks(import.meta.url, measure);
