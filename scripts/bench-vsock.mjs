#!/usr/bin/env node
// vsock benchmark, in one run:
//   (a) raw Unix stream sockets on this machine, 64 KiB writes: the ceiling
//       for vsock's host side (Node in one process, as tsvmm's device loop
//       sees it, and two processes);
//   (b) the device path driven by the simulated guest driver (no KVM):
//       host socket <-> compiled device (dist/) <-> virtqueues in guest RAM;
//   (c) a real Linux guest with socat and dd, where KVM can boot Linux
//       (inside the nested sandbox here), with the same raw baseline
//       measured there, since the sandbox is a much slower machine;
//   (d) the same guest under QEMU microvm with vhost-vsock-device, the peer
//       reference, next to tsvmm (scripts/lib/vsock-vs-qemu.mjs).
// Throughput in GB/s (10^9 bytes/s), medians of several runs; ratios to
// the raw baseline measured in the same run. The targets: the device path
// reaches 0.9 of the raw Unix-socket throughput, and a real guest 0.8 of
// QEMU's with vhost-vsock.
//
//   npm run bench:vsock [-- --runs N] [--mib N] [--guest-mib N] [--no-guest]
//
// --mib: MiB per throughput run for (a) and (b) (default 512); --guest-mib:
// the same for (c) and (d) (default 64); --no-guest: (a) and (b) only.
//
// (b) uses the drivers of test/helpers/vsock-bench.ts, transpiled at start
// with their imports of src/ pointed at dist/ (scripts/lib/test-helpers.mjs):
// the benchmark measures the same compiled JavaScript the CLI runs.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseFlags } from './lib/options.mjs';
import { insideSandbox } from './lib/host-kvm.mjs';
import { pingPong } from './lib/ping-pong.mjs';
import { measureAgainstQemu } from './lib/vsock-vs-qemu.mjs';
import { step } from './lib/progress.mjs';
import { formatRow, median, medianAndSpread } from './lib/stats.mjs';
import { compileTestHelpers } from './lib/test-helpers.mjs';
import { runWhereKvmWorks } from './lib/where-kvm-works.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CHUNK = 64 * 1024;
const MiB = 1024 * 1024;
/** The device path's target, a share of the raw one-process throughput. */
const DEVICE_PATH_TARGET = 0.9;
/** A real guest's target, a share of QEMU's throughput with vhost-vsock in the same run. */
const PEER_TARGET = 0.8;
/** Bytes of the unmeasured first pass that warms up the JIT. */
const WARM_UP_BYTES = 64 * MiB;

const USAGE = `usage: npm run bench:vsock [-- --runs N] [--mib N] [--guest-mib N] [--no-guest]

Measures vsock throughput and 64-byte round trips: raw Unix sockets, the
device path with the simulated guest driver (no KVM), a real guest (inside
the nested sandbox when this host's KVM cannot boot Linux), and the same
guest under QEMU microvm with vhost-vsock-device.

  --runs N        runs of each measurement (default 3)
  --mib N         MiB per run on the host (default 512)
  --guest-mib N   MiB per run with the real guest (default 64)
  --no-guest      the host parts only`;
const flags = parseFlags(process.argv.slice(2), { runs: 3, mib: 512, 'guest-mib': 64, 'no-guest': false, 'guest-part': false }, USAGE);
const { runs, mib: hostMiB, 'guest-mib': guestMiB } = flags;
/** Set when the script re-runs itself inside the sandbox for the real-guest parts only. */
const onlyGuestPart = flags['guest-part'];

const gbps = (bytes, ns) => bytes / ns;
const fmt = (value) => value.toFixed(value < 0.1 ? 3 : 2);
const us = (ns) => (ns / 1000).toFixed(1);
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];

async function medianOf(count, measure) {
  const samples = [];
  for (let i = 0; i < count; i++) samples.push(await measure());
  return median(samples);
}

// ---- (a) raw Unix sockets ------------------------------------------------

/** Listens on a fresh socket path; `onSocket` gets each accepted socket. */
async function listen(dir, name, onSocket) {
  const path = join(dir, name);
  const server = net.createServer(onSocket);
  await new Promise((done) => server.listen({ path }, done));
  return { path, server };
}

/** Writes `total` bytes in CHUNK writes, honouring back-pressure, then ends the socket. */
function pump(socket, total) {
  const chunk = Buffer.alloc(CHUNK, 1);
  let written = 0;
  const more = () => {
    while (written < total) {
      written += CHUNK;
      if (!socket.write(chunk)) return void socket.once('drain', more);
    }
    socket.end();
  };
  more();
}

/** Resolves with the ns from `startNs` until `total` bytes have been read from `socket`. */
function countUntil(socket, total, startNs) {
  return new Promise((done) => {
    let received = 0;
    socket.on('data', (chunk) => {
      received += chunk.length;
      if (received >= total) done(Number(process.hrtime.bigint() - startNs));
    });
  });
}

/** One process: a Node client writes to a Node server through a Unix socket (the same event loop, like tsvmm). Also the CPU it used (writer and reader). */
async function rawInProcess(dir, totalBytes) {
  let accepted;
  const serverSide = new Promise((done) => { accepted = done; });
  const { path, server } = await listen(dir, 'raw-in.sock', (socket) => accepted(socket));
  const client = net.createConnection({ path });
  await new Promise((done) => client.once('connect', done));
  const socket = await serverSide;
  const cpuBefore = process.cpuUsage();
  const start = process.hrtime.bigint();
  const received = countUntil(socket, totalBytes, start);
  pump(client, totalBytes);
  const ns = await received;
  const cpu = process.cpuUsage(cpuBefore);
  server.close();
  return { gbps: gbps(totalBytes, ns), cpu };
}

/** Two processes: a child Node writes, this process reads. */
async function rawTwoProcesses(dir, totalBytes) {
  let resolveNs;
  const measured = new Promise((done) => { resolveNs = done; });
  const { path, server } = await listen(dir, 'raw-two.sock', (socket) => {
    const start = process.hrtime.bigint();
    void countUntil(socket, totalBytes, start).then(resolveNs);
  });
  const writer = `
    const net = require('node:net');
    const socket = net.createConnection({ path: ${JSON.stringify(path)} });
    const chunk = Buffer.alloc(${CHUNK}, 1);
    let written = 0;
    const more = () => {
      while (written < ${totalBytes}) { written += chunk.length; if (!socket.write(chunk)) return void socket.once('drain', more); }
      socket.end();
    };
    socket.on('connect', more);`;
  const child = spawn(process.execPath, ['-e', writer], { stdio: 'inherit' });
  const ns = await measured;
  await new Promise((done) => child.once('exit', done));
  server.close();
  return gbps(totalBytes, ns);
}

/** 64-byte ping-pong between two sockets of one process; returns sorted round-trip times in ns. */
async function rawRoundTrips(dir, rounds) {
  const { path, server } = await listen(dir, 'raw-rtt.sock', (socket) => socket.on('data', (d) => socket.write(d)));
  const client = net.createConnection({ path });
  await new Promise((done) => client.once('connect', done));
  const times = await pingPong({ readable: client, writable: client }, rounds);
  client.destroy();
  server.close();
  return times;
}

/** (a) on its own, for (c). */
async function measureRaw(dir, totalBytes, rttRounds) {
  return {
    inProcess: await medianOf(runs, async () => (await rawInProcess(dir, totalBytes)).gbps),
    twoProcesses: await medianOf(runs, () => rawTwoProcesses(dir, totalBytes)),
    rtt: await rawRoundTrips(dir, rttRounds),
  };
}

function printRaw(raw, totalBytes) {
  console.log(`raw Unix stream socket, ${CHUNK / 1024} KiB writes, ${totalBytes / MiB} MiB per run, median of ${runs}:`);
  const widths = [38, 12];
  console.log(formatRow(['', 'GB/s'], widths));
  console.log(formatRow(['Node -> Node, one process', fmt(raw.inProcess)], widths));
  console.log(formatRow(['Node -> Node, two processes', fmt(raw.twoProcesses)], widths));
  console.log(formatRow(['64-byte round trip, one process (us)', `median ${us(median(raw.rtt))}, p99 ${us(percentile(raw.rtt, 0.99))}`], widths));
}

// ---- (b) the device path with the simulated guest driver -------------------

/** The simulated-guest drivers of test/helpers/vsock-bench.ts, compiled against dist/. */
async function loadSimulatedGuest(dir) {
  const helpersDir = join(dir, 'helpers');
  mkdirSync(helpersDir);
  return import(compileTestHelpers(['vsock-bench', 'vsock-guest', 'virtio-driver'], helpersDir)['vsock-bench']);
}

/** One table: throughput in both directions and round trips, with the ratio to `baseline` (a raw figure of the same run). */
function printDevicePath(title, result, raw, baseline) {
  console.log(title);
  const base = raw[baseline.key];
  const widths = [26, 8, 34];
  console.log(formatRow(['', 'GB/s', `/ raw ${baseline.label} (${fmt(base)})`], widths));
  for (const [label, value] of [['host -> guest', result.hostToGuest], ['guest -> host', result.guestToHost]]) {
    console.log(formatRow([label, fmt(value), (value / base).toFixed(2)], widths));
  }
  const rawMedian = median(raw.rtt);
  console.log(formatRow(['64-byte round trip (us)', '', `median ${us(median(result.rtt))} (raw ${us(rawMedian)}, x${(median(result.rtt) / rawMedian).toFixed(1)})`], widths) +
    `  p99 ${us(percentile(result.rtt, 0.99))} over ${result.rtt.length} rounds`);
}

/** Per data packet: `interrupts / notifications`. */
function perPacket({ packets, interrupts, notifications }) {
  return `${(interrupts / packets).toFixed(3)} / ${(notifications / packets).toFixed(3)}`;
}

/** Interrupts and queue notifications per data packet, with EVENT_IDX (each run) and without (one run). */
function printQueueCosts(costs, withoutEventIdx) {
  console.log(`interrupts / notifications per data packet (each a guest exit or injection under KVM), with EVENT_IDX (median of ${runs} runs) and without (1 run):`);
  const widths = [26, 26, 16];
  console.log(formatRow(['', 'EVENT_IDX (min-max)', 'without'], widths));
  for (const [label, key] of [['host -> guest', 'hostToGuest'], ['guest -> host', 'guestToHost']]) {
    // The middle run by total events per packet (the lower middle of an even count).
    const total = (run) => (run.interrupts + run.notifications) / run.packets;
    const sorted = [...costs[key]].sort((a, b) => total(a) - total(b));
    const range = `${total(sorted[0]).toFixed(3)}-${total(sorted.at(-1)).toFixed(3)}`;
    console.log(formatRow([label, `${perPacket(sorted[(sorted.length - 1) >> 1])} (${range})`, perPacket(withoutEventIdx[key])], widths));
  }
}

/**
 * CPU seconds per GiB moved, the whole process (all threads): on a shared
 * machine steadier than throughput. Both sides in one process each time:
 * the raw pair's writer and reader; the host writer or reader, the device
 * and the simulated guest driver.
 */
function printCpuPerGiB(cpuPerGiB) {
  console.log(`CPU seconds per GiB moved, this process (median [min-max] of ${runs} runs):`);
  const widths = [26, 22, 28];
  const raw = median(cpuPerGiB.inProcess);
  console.log(formatRow(['', 's/GiB', `/ raw one process (${raw.toFixed(2)} s)`], widths));
  for (const [label, key] of [['host -> guest', 'hostToGuest'], ['guest -> host', 'guestToHost']]) {
    const value = median(cpuPerGiB[key]);
    console.log(formatRow([label, medianAndSpread(cpuPerGiB[key], 2), (value / raw).toFixed(2)], widths));
  }
  const worst = Math.max(median(cpuPerGiB.hostToGuest), median(cpuPerGiB.guestToHost)) / raw;
  console.log(`target: at most 1.5x the raw pair's CPU per GiB: ${worst <= 1.5 ? 'met' : 'NOT met'} (worst direction ${worst.toFixed(2)})`);
}

// ---- (c) a real guest --------------------------------------------------------

/** Starts a Node listener on `path` that times each connection from accept to the end of its stream. */
async function timedSink(dir, name) {
  const samples = [];
  const waiters = [];
  const { path, server } = await listen(dir, name, (socket) => {
    const start = process.hrtime.bigint();
    let bytes = 0;
    socket.on('data', (chunk) => { bytes += chunk.length; });
    socket.on('end', () => {
      samples.push({ bytes, ns: Number(process.hrtime.bigint() - start) });
      waiters.shift()?.();
      socket.end();
    });
  });
  const next = () => new Promise((done) => (samples.length > 0 ? done() : waiters.push(done))).then(() => samples.shift());
  return { path, server, next };
}

/** CONNECT to `port`, retrying until the guest accepts; resolves with the socket after its OK line. */
async function connectToGuest(socketPath, port, deadlineMs = 120_000) {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const socket = net.createConnection({ path: socketPath, allowHalfOpen: true });
    const ok = await new Promise((done) => {
      let text = '';
      const onData = (chunk) => {
        text += chunk.toString('latin1');
        if (!text.includes('\n')) return;
        socket.off('data', onData);
        done(/^OK \d+\n$/.test(text));
      };
      socket.on('connect', () => socket.write(`CONNECT ${port}\n`));
      socket.on('data', onData);
      socket.on('error', () => done(false));
      socket.on('end', () => done(false)); // allowHalfOpen: a refusal ends our read side, 'close' would not come
      socket.on('close', () => done(false));
    });
    if (ok) return socket;
    socket.destroy();
    if (Date.now() > deadline) throw new Error(`the guest never accepted on port ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Serves `text` to every client of a listener on `path` (the guest fetches its script this way). */
async function serveText(dir, name, text) {
  return (await listen(dir, name, (socket) => socket.end(text))).server;
}

async function measureGuest(dir) {
  const socketPath = join(dir, 'g.sock');
  const bytes = guestMiB * MiB;
  const rttRounds = 1000;
  // Guest -> host first (the host listener is up before boot), then host -> guest, then round trips.
  // The kernel passes init at most 32 words: the command line fetches this script over vsock.
  // Its console (in the error when something fails) says how far it got.
  const guestScript = `
    for r in $(seq ${runs}); do
      echo "bench: guest -> host, run $r"
      dd if=/dev/zero bs=${CHUNK} count=${bytes / CHUNK} 2>/dev/null | socat -u -b ${CHUNK} - VSOCK-CONNECT:2:7002
    done
    for r in $(seq ${runs}); do
      echo "bench: host -> guest, run $r"
      socat -u -b ${CHUNK} VSOCK-LISTEN:7001 - | dd of=/dev/null bs=${CHUNK} 2>/dev/null
    done
    echo "bench: round trips"
    socat -b ${CHUNK} VSOCK-LISTEN:7003 PIPE
  `;
  const scriptServer = await serveText(dir, 'g.sock_999', guestScript);
  const sink = await timedSink(dir, 'g.sock_7002');
  const consolePath = join(dir, 'guest-console.log');
  const vm = spawn(process.execPath, [join(root, 'dist', 'cli.js'), '--vsock', `cid=3,socket=${socketPath}`,
    '--memory', 'size=512M', '--serial', `file=${consolePath}`,
    '--cmdline', 'quiet -- socat -u VSOCK-CONNECT:2:999 CREATE:/tmp/bench.sh && sh /tmp/bench.sh'], { stdio: 'inherit' });
  const exited = new Promise((done) => vm.once('exit', done));
  const stallMs = 300_000;
  const failure = (why) => new Error(`${why}; the guest console ended with:\n${
    existsSync(consolePath) ? readFileSync(consolePath, 'utf8').slice(-2000) : '(nothing)'}`);
  // Every wait also ends when tsvmm does, or after a generous time: a guest that failed must not hang the benchmark.
  const unlessExited = (promise) => {
    let timer;
    const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(failure(`no progress for ${stallMs / 1000} s`)), stallMs); });
    const exit = exited.then((code) => { throw failure(`tsvmm exited (status ${code}) before the benchmark finished`); });
    return Promise.race([promise, exit, timeout]).finally(() => clearTimeout(timer));
  };
  try {
    const guestToHost = [];
    for (let r = 0; r < runs; r++) {
      const sample = await unlessExited(sink.next());
      if (sample.bytes !== bytes) throw new Error(`guest -> host: got ${sample.bytes} bytes, expected ${bytes}`);
      guestToHost.push(gbps(sample.bytes, sample.ns));
    }
    const hostToGuest = [];
    for (let r = 0; r < runs; r++) {
      const socket = await unlessExited(connectToGuest(socketPath, 7001));
      const start = process.hrtime.bigint();
      // The guest's socat ends the stream once it has read everything: that is when the bytes have arrived.
      const ended = new Promise((done) => socket.once('end', done));
      pump(socket, bytes);
      await unlessExited(ended);
      hostToGuest.push(gbps(bytes, Number(process.hrtime.bigint() - start)));
      socket.destroy();
    }
    const socket = await unlessExited(connectToGuest(socketPath, 7003));
    const rtt = await unlessExited(pingPong({ readable: socket, writable: socket }, rttRounds));
    socket.end();
    const code = await exited;
    if (code !== 0) throw new Error(`tsvmm exited with status ${code}`);
    return { hostToGuest: median(hostToGuest), guestToHost: median(guestToHost), rtt };
  } finally {
    vm.kill('SIGKILL');
    sink.server.close();
    scriptServer.close();
  }
}

// ---- main ----------------------------------------------------------------------

async function withTempDir(work) {
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-bench-vsock-'));
  try {
    return await work(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** (a) and (b): anywhere, no KVM needed. Runs are interleaved so that machine noise hits raw and device alike. */
async function hostPart() {
  await withTempDir(async (dir) => {
    const simulated = await loadSimulatedGuest(dir);
    const totalBytes = hostMiB * MiB;
    step(`(a) raw Unix sockets and (b) the device path (dist/) with the simulated guest driver, no KVM: ${runs} runs`);
    // One short unmeasured pass of each first: the first run in a process
    // pays for compiling the code paths (measured: 1.0 GB/s, then 1.7, 2.5).
    const warmUpBytes = Math.min(totalBytes, WARM_UP_BYTES);
    await rawInProcess(dir, warmUpBytes);
    await simulated.measureHostToGuest({ totalBytes: warmUpBytes });
    await simulated.measureGuestToHost({ totalBytes: warmUpBytes, chunkSize: CHUNK });
    // Each run's whole result: throughput, CPU, interrupts and notifications.
    const runsOf = { inProcess: [], twoProcesses: [], hostToGuest: [], guestToHost: [] };
    for (let r = 0; r < runs; r++) {
      const inProcess = await rawInProcess(dir, totalBytes);
      runsOf.inProcess.push({ gbps: inProcess.gbps, cpuSecondsPerGiB: simulated.cpuSecondsPerGiB(inProcess.cpu, totalBytes) });
      runsOf.twoProcesses.push({ gbps: await rawTwoProcesses(dir, totalBytes) });
      runsOf.hostToGuest.push(await simulated.measureHostToGuest({ totalBytes }));
      runsOf.guestToHost.push(await simulated.measureGuestToHost({ totalBytes, chunkSize: CHUNK }));
    }
    // What EVENT_IDX saves: the same transfers once with a driver that declines it.
    const withoutEventIdx = {
      hostToGuest: await simulated.measureHostToGuest({ totalBytes, eventIdx: false }),
      guestToHost: await simulated.measureGuestToHost({ totalBytes, chunkSize: CHUNK, eventIdx: false }),
    };
    const samples = (key, field) => runsOf[key].map((run) => run[field]);
    const raw = {
      inProcess: median(samples('inProcess', 'gbps')), twoProcesses: median(samples('twoProcesses', 'gbps')),
      rtt: await rawRoundTrips(dir, 10_000),
    };
    printRaw(raw, totalBytes);
    const device = {
      hostToGuest: median(samples('hostToGuest', 'gbps')), guestToHost: median(samples('guestToHost', 'gbps')),
      rtt: await simulated.measureRoundTrips({ rounds: 10_000, messageSize: 64 }),
    };
    // The simulated guest lives in tsvmm's process, like the raw one-process pair.
    printDevicePath(`virtio-vsock device, simulated guest (64 KiB host writes / guest packets), ${hostMiB} MiB per run, median of ${runs}:`,
      device, raw, { key: 'inProcess', label: 'one process' });
    printQueueCosts(runsOf, withoutEventIdx);
    printCpuPerGiB({
      inProcess: samples('inProcess', 'cpuSecondsPerGiB'),
      hostToGuest: samples('hostToGuest', 'cpuSecondsPerGiB'), guestToHost: samples('guestToHost', 'cpuSecondsPerGiB'),
    });
    const worst = Math.min(device.hostToGuest, device.guestToHost) / raw.inProcess;
    console.log(`target: the device path reaches ${DEVICE_PATH_TARGET} of the raw throughput: ${worst >= DEVICE_PATH_TARGET ? 'met' : 'NOT met'} (worst direction ${worst.toFixed(2)})`);
  });
}

/** (c): where a real guest boots; its own raw baseline, measured on the same machine. */
async function guestPart() {
  await withTempDir(async (dir) => {
    step(`(c) a real Linux guest${insideSandbox ? ' (inside the nested sandbox: TCG, a much slower machine)' : ''}`);
    const raw = await measureRaw(dir, guestMiB * MiB, 1000);
    printRaw(raw, guestMiB * MiB);
    const guest = await measureGuest(dir);
    // A host program, tsvmm and the guest: at least two processes, so that is the baseline.
    printDevicePath(`tsvmm + real guest, socat + dd in the guest (64 KiB), ${guestMiB} MiB per run, median of ${runs}:`,
      guest, raw, { key: 'twoProcesses', label: 'two processes' });
    step('(d) the same guest under tsvmm and under QEMU microvm with vhost-vsock-device');
    const images = { kernel: join(root, 'guest-images', 'out', 'vmlinux'), initramfs: join(root, 'guest-images', 'out', 'initramfs.cpio.gz') };
    printAgainstQemu(await measureAgainstQemu({ root, dir, images, mib: guestMiB, runs }));
  });
}

/** (d)'s table: each VMM's throughput both ways and round trips, and tsvmm / QEMU. */
function printAgainstQemu(results) {
  console.log(`tsvmm vs QEMU vhost-vsock, the same guest and socat workload, ${guestMiB} MiB per run, ${runs} runs, median [min-max]`);
  console.log('(timed in the guest; the host end is socat on a Unix socket for tsvmm, on an AF_VSOCK socket for QEMU;');
  console.log(' round trips through a socat child\'s stdio on the host, the same hops for both):');
  const widths = [22, 22, 22, 30];
  console.log(formatRow(['', 'guest -> host GB/s', 'host -> guest GB/s', '64-byte round trip us (p99)'], widths));
  const row = (name, r) => [name, medianAndSpread(r.guestToHost, 3), medianAndSpread(r.hostToGuest, 3),
    `${us(median(r.rtt))} (${us(percentile(r.rtt, 0.99))})`];
  const tsvmm = results.tsvmm;
  const qemu = results['qemu vhost-vsock'];
  console.log(formatRow(row('tsvmm', tsvmm), widths));
  console.log(formatRow(row('qemu vhost-vsock', qemu), widths));
  const ratio = (key) => median(tsvmm[key]) / median(qemu[key]);
  console.log(formatRow(['tsvmm / qemu', ratio('guestToHost').toFixed(2), ratio('hostToGuest').toFixed(2),
    `x${(median(tsvmm.rtt) / median(qemu.rtt)).toFixed(2)} of QEMU's time`], widths));
  const worst = Math.min(ratio('guestToHost'), ratio('hostToGuest'));
  console.log(`target: tsvmm / QEMU at least ${PEER_TARGET} each way: ${worst >= PEER_TARGET ? 'met' : 'NOT met'} (worst direction ${worst.toFixed(2)})`);
}

async function main() {
  if (onlyGuestPart) return guestPart();
  // The benchmark runs the compiled code (dist/): compile first if the sources changed.
  const build = spawnSync(process.execPath, [join(root, 'scripts', 'ensure-built.mjs')], { stdio: 'inherit' });
  if (build.status !== 0) return build.status ?? 1;
  await hostPart();
  if (flags['no-guest']) return 0;
  // The guest part where KVM can boot Linux; re-run inside the sandbox, it
  // skips the host part already measured here.
  return runWhereKvmWorks(import.meta.url, guestPart, { rerunArgs: ['--guest-part'] });
}

try {
  process.exitCode = (await main()) ?? 0;
} catch (error) {
  console.error(`bench-vsock: ${error.message ?? error}`);
  process.exitCode = 1;
}
