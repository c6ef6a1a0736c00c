#!/usr/bin/env node
// Memory benchmark, tsvmm against QEMU microvm measured in the same run
// (inside the nested sandbox when the host's KVM cannot boot Linux), with
// the default guest (guest-images/out/vmlinux and initramfs.cpio.gz), 1 vCPU:
//   (a) resident memory beyond guest RAM: a 256 MiB guest that has run its
//       command and sleeps; the VMM's RSS from /proc/<pid>/smaps, with and
//       without the guest RAM mapping. The issue's target: tsvmm's RSS
//       beyond guest RAM is at most 50 MiB;
//   (b) the same for tsvmm while the guest streams to a host program over
//       vsock (the highest of a few samples taken during the transfer);
//   (c) density: 8 VMs of 128 MiB started at once, the wall time from the
//       first spawn to the last exit, each VM checked for having run its
//       own command.
// Medians [min-max] over the runs and the tsvmm/QEMU ratio of the medians;
// compare ratios within a run (scripts/lib/stats.mjs says why).
//
//   npm run bench:memory [-- --runs N]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { constants, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseFlags } from './lib/options.mjs';
import { QEMU_PROGRAM, qemuMicrovmArguments } from './lib/qemu-microvm.mjs';
import { step } from './lib/progress.mjs';
import { formatRow, median, medianAndSpread } from './lib/stats.mjs';
import { runWhereKvmWorks } from './lib/where-kvm-works.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const KERNEL = join(root, 'guest-images', 'out', 'vmlinux');
const INITRAMFS = join(root, 'guest-images', 'out', 'initramfs.cpio.gz');
const TSVMM_CLI = join(root, 'dist', 'cli.js');

/** Guest RAM for (a) and (b). */
const GUEST_MIB = 256;
/** (c): how many VMs at once, and the RAM of each. */
const DENSITY_VMS = 8;
const DENSITY_MIB = 128;
/** The issue's target for tsvmm's RSS beyond guest RAM. */
const TARGET_MIB = 50;
/** Longest a VM may take to reach what we wait for, generous: in (c) the guests share the sandbox's 2 slow vCPUs. */
const VM_TIMEOUT_MS = 180_000;
/** How long a VMM gets to stop after SIGTERM before it is killed. */
const KILL_GRACE_MS = 5_000;
/** How long the guest of (a) sleeps after its marker: ample time to read smaps once. */
const IDLE_SECONDS = 20;
/** (b): the host port the guest connects to, the size of its writes, and the sampling. */
const VSOCK_PORT = 5000;
const CHUNK = 64 * 1024;
const VSOCK_SAMPLES = 5;
const SAMPLE_INTERVAL_MS = 1_000;
/** How much of each VMM's output is kept for failure messages. */
const OUTPUT_KEPT = 64 * 1024;
const OUTPUT_SHOWN = 2_000;

const USAGE = `usage: npm run bench:memory [-- --runs N]

Boots the default guest under tsvmm and QEMU microvm (inside the nested
sandbox when this host's KVM cannot boot Linux) and reports, as medians
[min-max] over the runs: each VMM's resident memory beyond guest RAM with
an idle ${GUEST_MIB} MiB guest, tsvmm's while the guest streams over vsock,
and the wall time of ${DENSITY_VMS} VMs of ${DENSITY_MIB} MiB started at once.

  --runs N   runs of each measurement (default 3)`;

const { runs } = parseFlags(process.argv.slice(2), { runs: 3 }, USAGE);
if (!Number.isInteger(runs) || runs < 1) {
  console.error(`--runs takes a whole number of at least 1\n\n${USAGE}`);
  process.exit(2);
}

const MARKER = 'tsvmm-bench-memory-ready';
/** A line that is just `text` (no regex metacharacters): the kernel command line holds the text too, inside a longer line. */
const lineOf = (text) => new RegExp(`^${text}\r?$`, 'm');

const kibToMib = (kiB) => kiB / 1024;
const seconds = (ns) => Number(ns) / 1e9;

// ---- the two VMMs --------------------------------------------------------------

/**
 * [program, arguments] booting the default guest with `memoryMiB` of RAM
 * and `guestCommand` for its /init (after ` -- `; the kernel's parser eats
 * double quotes, so the commands below use none).
 */
const vmmCommands = {
  tsvmm: (memoryMiB, guestCommand, extra = []) => [process.execPath, [TSVMM_CLI, ...extra,
    '--kernel', KERNEL, '--initramfs', INITRAMFS, '--memory', `size=${memoryMiB}M`, '--cmdline', `quiet -- ${guestCommand}`]],
  // As scripts/bench-boot.mjs starts it. The guest's reset ends QEMU (-no-reboot, reboot=t).
  'qemu microvm': (memoryMiB, guestCommand) => [QEMU_PROGRAM, qemuMicrovmArguments({
    kernel: KERNEL, initramfs: INITRAMFS, memoryMiB, kernelParameters: `quiet -- ${guestCommand}`,
  })],
};

// ---- child processes: every VMM is stopped, whatever happens --------------

/** The VMMs started and not yet closed. */
const running = new Set();
/** Temporary directories not yet removed. */
const tempDirs = new Set();

/** Kills what is still running and removes the temporary directories, synchronously (also from an 'exit' handler). */
function cleanUp() {
  for (const vmm of running) vmm.child.kill('SIGKILL');
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

function startVmm(label, [program, args]) {
  const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const vmm = { label, child, output: '', exitNs: undefined };
  running.add(vmm);
  const keep = (chunk) => { vmm.output = (vmm.output + chunk).slice(-OUTPUT_KEPT); };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.once('exit', () => { vmm.exitNs = process.hrtime.bigint(); });
  // 'close' comes after the output has all been read; 'error' when the program could not be started.
  vmm.closed = new Promise((done) => {
    child.once('close', (code, signal) => done({ code, signal }));
    child.once('error', (error) => done({ code: null, signal: null, error }));
  }).finally(() => running.delete(vmm));
  return vmm;
}

function describeEnd({ code, signal, error }) {
  return error ? `could not start: ${error.message}` : signal ? `killed by ${signal}` : `exit status ${code}`;
}

function failure(vmm, why) {
  return new Error(`${vmm.label}: ${why}; its output ended with:\n${vmm.output.slice(-OUTPUT_SHOWN) || '(nothing)'}`);
}

/** Resolves with the first of `promises`, or fails with `failure(vmm, why)` after VM_TIMEOUT_MS (`onTimeout` runs first). */
async function raceTimeout(vmm, promises, why, onTimeout = () => {}) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(failure(vmm, why));
    }, VM_TIMEOUT_MS);
  });
  try {
    return await Promise.race([...promises, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves with `promise`, or fails when the VMM ends first or VM_TIMEOUT_MS passes. */
function whileRunning(vmm, promise, what) {
  const ended = vmm.closed.then((end) => { throw failure(vmm, `${describeEnd(end)} before ${what}`); });
  return raceTimeout(vmm, [promise, ended], `no ${what} within ${VM_TIMEOUT_MS / 1000} s`);
}

/** Resolves when the VMM's output (stdout and stderr) matches `pattern`. */
function outputMatches(vmm, pattern) {
  return new Promise((done) => {
    const check = () => {
      if (!pattern.test(vmm.output)) return;
      vmm.child.stdout.off('data', check);
      vmm.child.stderr.off('data', check);
      done();
    };
    vmm.child.stdout.on('data', check);
    vmm.child.stderr.on('data', check);
    check();
  });
}

/** Resolves with how the VMM ended; kills it and fails after VM_TIMEOUT_MS. */
function ends(vmm) {
  return raceTimeout(vmm, [vmm.closed], `still running after ${VM_TIMEOUT_MS / 1000} s`, () => vmm.child.kill('SIGKILL'));
}

/** SIGTERM (both VMMs stop cleanly on it), SIGKILL after KILL_GRACE_MS; resolves once it is gone. */
async function stop(vmm) {
  if (!running.has(vmm)) return;
  vmm.child.kill('SIGTERM');
  const timer = setTimeout(() => vmm.child.kill('SIGKILL'), KILL_GRACE_MS);
  try {
    await vmm.closed;
  } finally {
    clearTimeout(timer);
  }
}

// ---- resident memory from /proc/<pid>/smaps ---------------------------------

/** Each mapping of /proc/<pid>/smaps: its header line, permissions, pathname, Size and Rss in kB. */
function readMappings(pid) {
  const mappings = [];
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const header = /^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ \S+ *(.*)$/.exec(line);
    if (header) {
      mappings.push({ header: line, perms: header[1], path: header[2], sizeKiB: 0, rssKiB: 0 });
      continue;
    }
    const field = /^(Size|Rss):\s+(\d+) kB$/.exec(line);
    if (field && mappings.length > 0) mappings.at(-1)[field[1] === 'Size' ? 'sizeKiB' : 'rssKiB'] = Number(field[2]);
  }
  return mappings;
}

/**
 * The pathnames smaps shows for anonymous memory: none for a private
 * mapping (proc(5); QEMU's RAM, qemu_ram_mmap() in QEMU's
 * util/mmap-alloc.c), `/dev/zero (deleted)` for a shared one, which Linux
 * backs with an unlinked shmem file of that name (shmem_zero_setup() in
 * mm/shmem.c; tsvmm's RAM is MAP_SHARED | MAP_ANONYMOUS, src/memory/ram.ts).
 */
const ANONYMOUS_PATHS = new Set(['', '/dev/zero (deleted)']);

/**
 * The VMM's total RSS and its RSS beyond guest RAM, in MiB. Both VMMs map
 * all guest RAM as one anonymous read-write mapping of exactly the guest's
 * size (tsvmm: allocateGuestRam() in src/memory/ram.ts), and that mapping
 * is the one left out. Matching on the size is safe because it must match
 * exactly one mapping: the runtimes have other anonymous mappings, so one of
 * the same size is possible in principle, and the kernel merges adjacent
 * anonymous mappings with the same flags, which would hide the RAM's size;
 * either stops the benchmark rather than leave out the wrong memory.
 */
function residentMemory(vmm, guestMiB) {
  const mappings = readMappings(vmm.child.pid);
  const ram = mappings.filter((m) => m.sizeKiB === guestMiB * 1024 && m.perms.startsWith('rw') && ANONYMOUS_PATHS.has(m.path));
  if (ram.length !== 1) {
    throw failure(vmm, `expected one anonymous read-write mapping of ${guestMiB} MiB (the guest RAM) in /proc/${vmm.child.pid}/smaps, ` +
      `found ${ram.length}${ram.map((m) => `\n  ${m.header}`).join('')}`);
  }
  const totalKiB = mappings.reduce((sum, m) => sum + m.rssKiB, 0);
  return { totalMiB: kibToMib(totalKiB), beyondRamMiB: kibToMib(totalKiB - ram[0].rssKiB) };
}

// ---- (a) an idle guest ---------------------------------------------------------

async function idleMemory(name) {
  const vmm = startVmm(name, vmmCommands[name](GUEST_MIB, `echo ${MARKER}; sleep ${IDLE_SECONDS}`));
  try {
    await whileRunning(vmm, outputMatches(vmm, lineOf(MARKER)), 'marker from the guest');
    return residentMemory(vmm, GUEST_MIB);
  } finally {
    await stop(vmm);
  }
}

// ---- (b) tsvmm while the guest streams over vsock ------------------------------

/**
 * The guest writes zeros to the host over vsock, without end, until tsvmm
 * is stopped; its connection to CID 2 port VSOCK_PORT reaches a Unix socket
 * listening at `<socket>_<port>` (docs/vsock.md). Between samples, data must
 * have arrived, or the samples would not be of a transfer.
 */
async function memoryWhileStreaming() {
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-bench-memory-'));
  tempDirs.add(dir);
  const socket = join(dir, 'v.sock');
  let bytes = 0;
  const clients = new Set();
  let flowing;
  const firstBytes = new Promise((done) => { flowing = done; });
  const server = net.createServer((client) => {
    clients.add(client);
    client.on('data', (chunk) => {
      bytes += chunk.length;
      flowing();
    });
    client.on('error', () => {}); // stopping tsvmm resets the connection
  });
  await new Promise((done, fail) => server.once('error', fail).listen({ path: `${socket}_${VSOCK_PORT}` }, done));
  const vmm = startVmm('tsvmm (vsock)', vmmCommands.tsvmm(GUEST_MIB,
    `dd if=/dev/zero bs=${CHUNK} 2>/dev/null | socat -u -b ${CHUNK} - VSOCK-CONNECT:2:${VSOCK_PORT}`,
    ['--vsock', `cid=3,socket=${socket}`]));
  try {
    await whileRunning(vmm, firstBytes, 'data from the guest over vsock');
    const startBytes = bytes;
    const startNs = process.hrtime.bigint();
    const samples = [];
    let previous = bytes;
    for (let i = 0; i < VSOCK_SAMPLES; i++) {
      await whileRunning(vmm, sleep(SAMPLE_INTERVAL_MS), 'end of sampling');
      if (bytes === previous) throw failure(vmm, `no data arrived over vsock for ${SAMPLE_INTERVAL_MS} ms`);
      previous = bytes;
      samples.push(residentMemory(vmm, GUEST_MIB).beyondRamMiB);
    }
    const mibPerSecond = (bytes - startBytes) / 2 ** 20 / seconds(process.hrtime.bigint() - startNs);
    return { beyondRamMiB: Math.max(...samples), mibPerSecond };
  } finally {
    await stop(vmm);
    for (const client of clients) client.destroy();
    server.close();
    rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
  }
}

// ---- (c) density -----------------------------------------------------------------

/**
 * How each VM of the batch shows it ran its own command n: tsvmm exits
 * with the guest's status and the default /init prints `tsvmm-guest: exit
 * <status>` (guest-images/initramfs/init; statuses 1 and 2 are also
 * tsvmm's own failures, hence the line); QEMU cannot pass a status on, so
 * its guest prints a marker and QEMU exits 0 on the reset.
 */
const densityRuns = {
  tsvmm: {
    command: (n) => `exit ${n}`,
    ran: (n, { code }, output) => code === n && lineOf(`tsvmm-guest: exit ${n}`).test(output),
  },
  'qemu microvm': {
    command: (n) => `echo ${MARKER}-${n}`,
    ran: (n, { code }, output) => code === 0 && lineOf(`${MARKER}-${n}`).test(output),
  },
};

/** Seconds from the first spawn to the last exit of DENSITY_VMS VMs started at once. */
async function densityWallTime(name) {
  const { command, ran } = densityRuns[name];
  const startNs = process.hrtime.bigint();
  const vmms = [];
  for (let n = 1; n <= DENSITY_VMS; n++) vmms.push(startVmm(`${name} #${n} of ${DENSITY_VMS}`, vmmCommands[name](DENSITY_MIB, command(n))));
  try {
    const endings = await Promise.all(vmms.map(ends));
    endings.forEach((end, i) => {
      if (!ran(i + 1, end, vmms[i].output)) throw failure(vmms[i], `did not run its command (${describeEnd(end)})`);
    });
    const lastExitNs = vmms.reduce((last, vmm) => (vmm.exitNs > last ? vmm.exitNs : last), startNs);
    return seconds(lastExitNs - startNs);
  } finally {
    await Promise.all(vmms.map(stop));
  }
}

// ---- the runs and the report ---------------------------------------------------

/** A median [min-max] cell, or what stands in for it when every run of it failed. */
const cell = (values, digits) => (values.length > 0 ? medianAndSpread(values, digits) : 'no run succeeded');
const ratio = (tsvmm, qemu) => (tsvmm.length > 0 && qemu.length > 0 ? (median(tsvmm) / median(qemu)).toFixed(2) : '-');

function report(results) {
  const names = Object.keys(vmmCommands);
  const widths = [14, 26, 22];
  console.log(`resident memory, ${runs} runs, median [min-max] in MiB, ${GUEST_MIB} MiB guest idle after its command (same kernel and initramfs, 1 vCPU):`);
  console.log(formatRow(['vmm', 'RSS beyond guest RAM', 'total RSS'], widths));
  const column = (name, key) => results.idle[name].map((sample) => sample[key]);
  for (const name of names) console.log(formatRow([name, cell(column(name, 'beyondRamMiB'), 1), cell(column(name, 'totalMiB'), 1)], widths));
  console.log(formatRow(['tsvmm / qemu', ratio(column('tsvmm', 'beyondRamMiB'), column('qemu microvm', 'beyondRamMiB')),
    ratio(column('tsvmm', 'totalMiB'), column('qemu microvm', 'totalMiB'))], widths));

  const streaming = results.vsock.map((sample) => sample.beyondRamMiB);
  const rates = results.vsock.map((sample) => sample.mibPerSecond);
  console.log(`tsvmm while the guest streams to the host over vsock: ${cell(streaming, 1)} MiB beyond guest RAM ` +
    `(the highest of ${VSOCK_SAMPLES} samples ${SAMPLE_INTERVAL_MS / 1000} s apart in each run; the guest sent ${cell(rates, 0)} MiB/s meanwhile)`);

  const verdict = (samples) => (samples.length === 0 ? 'not measured'
    : `${median(samples) <= TARGET_MIB ? 'met' : 'NOT met'} (${median(samples).toFixed(1)} MiB)`);
  console.log(`target: tsvmm's RSS beyond guest RAM <= ${TARGET_MIB} MiB: idle ${verdict(column('tsvmm', 'beyondRamMiB'))}, streaming over vsock ${verdict(streaming)}`);

  console.log(`density: ${DENSITY_VMS} VMs of ${DENSITY_MIB} MiB started at once, ${runs} runs, median [min-max] in s from the first spawn to the last exit:`);
  for (const name of names) console.log(formatRow([name, cell(results.density[name], 1)], widths));
  console.log(formatRow(['tsvmm / qemu', ratio(results.density.tsvmm, results.density['qemu microvm'])], widths));
  if (results.failures.length === 0) return;
  console.log(`${results.failures.length} run(s) failed and are left out of the figures above:`);
  for (const why of results.failures) console.log(`- ${why}`);
}

async function measure() {
  process.on('exit', cleanUp);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(signal, () => {
      cleanUp();
      process.exit(128 + constants.signals[signal]);
    });
  }
  const names = Object.keys(vmmCommands);
  const results = { idle: {}, vsock: [], density: {}, failures: [] };
  // A run that fails (a guest that dies: the nested sandbox loses one now
  // and then, README "The nested sandbox's own stability") is reported and
  // left out, and the benchmark goes on, so the other figures are not lost.
  const sample = async (samples, measureOnce) => {
    try {
      samples.push(await measureOnce());
    } catch (error) {
      results.failures.push(error.message);
    }
  };
  for (const name of names) {
    results.idle[name] = [];
    results.density[name] = [];
  }
  try {
    for (let run = 1; run <= runs; run++) {
      step(`run ${run} of ${runs}`);
      // Interleaved, so that machine noise hits both VMMs alike.
      for (const name of names) await sample(results.idle[name], () => idleMemory(name));
      await sample(results.vsock, memoryWhileStreaming);
      for (const name of names) await sample(results.density[name], () => densityWallTime(name));
    }
  } finally {
    cleanUp();
    await Promise.all([...running].map((vmm) => vmm.closed));
  }
  report(results);
  return results.failures.length === 0 ? 0 : 1;
}

try {
  process.exitCode = await runWhereKvmWorks(import.meta.url, measure);
} catch (error) {
  console.error(`bench-memory: ${error.message ?? error}`);
  process.exitCode = 1;
}
