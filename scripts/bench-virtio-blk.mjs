#!/usr/bin/env node
// virtio-blk benchmark, sequential throughput with 1 MiB requests, in one run:
//   (a) the device path alone, no vCPU, on this host: the compiled device
//       (dist/) driven by the simulated guest driver
//       (test/helpers/virtio-driver.ts) against an image file, next to its
//       ceiling, Node's own fs doing the same I/O (1 MiB reads or writes at
//       increasing offsets, the same number in flight) on the same file;
//   (b) real Linux guests, where KVM can boot Linux (inside the nested
//       sandbox here): dd with O_DIRECT in the guest, timed by the guest,
//       and 4 KiB random reads (IOPS, one at a time), under tsvmm and under
//       QEMU microvm with the same kernel, initramfs, memory and image
//       file, their ratio, and the Node fs ceiling on that machine.
// (a) is never run inside the sandbox: there the simulated driver's own
// copies, on a TCG-emulated CPU, cost more than the device and a real guest
// together, so the figure would say nothing about the device.
// MB/s are 10^6 bytes per second, medians of several runs; compare ratios
// measured in the same run (docs/architecture.md, "The development machines": they are noisy).
//
//   npm run bench:virtio-blk [-- --runs N] [--mib N] [--guest-mib N] [--no-guest]
//
// --mib: MiB per run for (a) (default 512); --guest-mib: MiB per dd in (b)
// (default 256, also the image size); --no-guest: (a) only.
//
// (a) needs test/helpers/virtio-driver.ts, and Node 20 cannot run TypeScript:
// it is transpiled into a temp dir at start, its imports of src/ pointed at
// dist/, so the benchmark measures the compiled JavaScript the CLI runs.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { initCommand } from './lib/guest-command.mjs';
import { parseFlags } from './lib/options.mjs';
import { QEMU_PROGRAM, qemuMicrovmArguments } from './lib/qemu-microvm.mjs';
import { compileTestHelpers } from './lib/test-helpers.mjs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { insideSandbox } from './lib/host-kvm.mjs';
import { step } from './lib/progress.mjs';
import { formatRow, median, medianAndSpread } from './lib/stats.mjs';
import { runWhereKvmWorks } from './lib/where-kvm-works.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = pathToFileURL(join(root, 'dist')).href;
const out = (name) => join(root, 'guest-images', 'out', name);
const MiB = 1024 * 1024;

const USAGE = `usage: npm run bench:virtio-blk [-- --runs N] [--mib N] [--guest-mib N] [--no-guest]

Measures sequential 1 MiB reads and writes: the device path with the
simulated guest driver next to Node's own file I/O on this host, then dd
with O_DIRECT in a real guest under tsvmm and under QEMU microvm (inside
the nested sandbox when this host's KVM cannot boot Linux).

  --runs N        runs of each measurement (default 3)
  --mib N         MiB per run of the device path (default 512)
  --guest-mib N   MiB per dd in the guests, also the image size (default 256)
  --no-guest      the device path only`;
const flags = parseFlags(process.argv.slice(2), { runs: 3, mib: 512, 'guest-mib': 256, 'no-guest': false }, USAGE);
const { runs, mib: deviceMiB, 'guest-mib': guestMiB } = flags;

/** 1 MiB requests of 16 x 64 KiB segments (the device's SIZE_MAX), 8 in flight. */
const REQUEST_BYTES = MiB;
const SEGMENT_BYTES = 64 * 1024;
const IN_FLIGHT = 8;
/** Longest a device-path run may take before it counts as stuck. */
const DEVICE_PATH_TIMEOUT_MS = 120_000;
/** How long each round of 4 KiB random reads in the guest lasts. */
const RANDOM_READ_SECONDS = 5;
/** Image size for (a): requests wrap around it. */
const DEVICE_IMAGE_BYTES = 256 * MiB;

const mbps = (bytes, seconds) => bytes / 1e6 / seconds;
const where = insideSandbox ? 'inside the nested sandbox (TCG: a much slower machine)' : 'on this host';

function withTempDir(body) {
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-bench-blk-'));
  return Promise.resolve(body(dir)).finally(() => rmSync(dir, { recursive: true, force: true }));
}

function createSparseImage(path, bytes) {
  const fd = openSync(path, 'w');
  ftruncateSync(fd, bytes);
  closeSync(fd);
}

async function timed(body) {
  const start = process.hrtime.bigint();
  await body();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

// ---- (a) the device path -------------------------------------------------

/** The simulated driver, compiled against dist/ into `dir`. */
async function loadSimulatedDriver(dir) {
  return import(compileTestHelpers(['virtio-driver'], dir)['virtio-driver']);
}

/** The ceiling: Node's fs reading or writing 1 MiB at a time, IN_FLIGHT at once, as DiskImage does. */
async function rawFileSeconds(path, imageBytes, totalBytes, direction) {
  const file = await open(path, 'r+');
  const buffers = Array.from({ length: IN_FLIGHT }, () => Buffer.alloc(REQUEST_BYTES, 0x5a));
  let next = 0;
  const count = totalBytes / REQUEST_BYTES;
  const worker = async (buffer) => {
    while (next < count) {
      const position = (next++ * REQUEST_BYTES) % imageBytes;
      if (direction === 'write') await file.writev([buffer], position);
      else await file.read(buffer, 0, REQUEST_BYTES, position);
    }
  };
  try {
    return await timed(() => Promise.all(buffers.map(worker)));
  } finally {
    await file.close();
  }
}

function requestHeader(type, sector) {
  const header = new Uint8Array(16);
  const view = new DataView(header.buffer);
  view.setUint32(0, type, true);
  view.setBigUint64(8, BigInt(sector), true);
  return header;
}

/** Lets the device's I/O complete (one turn of the event loop); fails once `deadline` has passed. */
async function waitForDevice(deadline) {
  if (Date.now() > deadline) throw new Error(`the device path did not finish within ${DEVICE_PATH_TIMEOUT_MS / 1000} s`);
  await new Promise((resolve) => setImmediate(resolve));
}

/**
 * The device with the simulated driver: IN_FLIGHT requests kept in the
 * queue, each [header, 16 x 64 KiB data, status] in an indirect table, as
 * Linux queues them. The driver's copy filling each write's buffers is
 * part of what is timed; for reads it takes only the status byte back.
 */
async function devicePathSeconds(driverModule, block, path, totalBytes, direction) {
  const device = await block.openBlockDevice({ path });
  const driver = driverModule.VirtioTestDriver.create(device, { memorySize: 256 << 20 });
  const queue = driver.queue(0);
  const payload = new Uint8Array(SEGMENT_BYTES).fill(0x5a);
  const type = direction === 'write' ? block.RequestType.Out : block.RequestType.In;
  const data = Array.from({ length: REQUEST_BYTES / SEGMENT_BYTES },
    () => (direction === 'write' ? { readable: payload } : { writable: SEGMENT_BYTES }));
  const count = totalBytes / REQUEST_BYTES;
  let issued = 0;
  let completed = 0;
  const deadline = Date.now() + DEVICE_PATH_TIMEOUT_MS;
  try {
    return await timed(async () => {
      while (completed < count) {
        while (issued < count && issued - completed < IN_FLIGHT) {
          const sector = ((issued++ * REQUEST_BYTES) % DEVICE_IMAGE_BYTES) / block.SECTOR_SIZE;
          queue.addBuffer([{ readable: requestHeader(type, sector) }, ...data, { writable: 1 }], { indirect: true });
        }
        queue.kickIfNeeded();
        // Only the status byte: reading the data back out of guest memory
        // (takeUsed) cost the driver two 1 MiB copies per read, which this
        // benchmark once counted against the device (reads at 0.08 of Node's).
        const used = queue.takeUsedStatus();
        for (const { lastWritableByte: status } of used) {
          if (status !== block.RequestStatus.Ok) throw new Error(`request failed with status ${status}`);
          completed++;
        }
        if (used.length === 0) await waitForDevice(deadline);
      }
    });
  } finally {
    await device.close();
  }
}

async function devicePart() {
  await withTempDir(async (dir) => {
    step(`(a) the device path ${where}: dist/ virtio-blk + the simulated driver, no vCPU`);
    const driverModule = await loadSimulatedDriver(dir);
    const block = await import(`${dist}/devices/virtio/block/index.js`);
    const image = join(dir, 'device.img');
    createSparseImage(image, DEVICE_IMAGE_BYTES);
    const totalBytes = deviceMiB * MiB;
    const samples = { raw: { write: [], read: [] }, device: { write: [], read: [] } };
    // Write first, so that reads find allocated blocks; interleave raw and device runs.
    for (let i = 0; i < runs; i++) {
      for (const direction of ['write', 'read']) {
        samples.raw[direction].push(mbps(totalBytes, await rawFileSeconds(image, DEVICE_IMAGE_BYTES, totalBytes, direction)));
        samples.device[direction].push(mbps(totalBytes, await devicePathSeconds(driverModule, block, image, totalBytes, direction)));
      }
    }
    const result = (what) => ({ write: median(samples[what].write), read: median(samples[what].read) });
    const raw = result('raw');
    const device = result('device');
    console.log(`\nsequential, 1 MiB requests (16 x 64 KiB), ${IN_FLIGHT} in flight, ${deviceMiB} MiB per run, median of ${runs}, ${where}:`);
    const widths = [44, 14, 14];
    console.log(formatRow(['', 'write (MB/s)', 'read (MB/s)'], widths));
    console.log(formatRow(['Node fs on the image file (the ceiling)', raw.write.toFixed(0), raw.read.toFixed(0)], widths));
    console.log(formatRow(['virtio-blk device + simulated driver', device.write.toFixed(0), device.read.toFixed(0)], widths));
    console.log(formatRow(['device / ceiling', (device.write / raw.write).toFixed(2), (device.read / raw.read).toFixed(2)], widths));
  });
}

// ---- (b) real guests ---------------------------------------------------------

/**
 * What the guest runs: one unmeasured pass that allocates the image's
 * blocks on the host, then `runs` rounds of: a write and a read pass of
 * O_DIRECT dd with 1 MiB blocks, each bracketed by /proc/uptime (10 ms
 * resolution), and RANDOM_READ_SECONDS of 4 KiB random reads, O_DIRECT, one
 * at a time (guest-images/bench/random-read.c, which prints its own rate).
 */
function guestScript() {
  const dd = (args) => `dd ${args} bs=1M count=${guestMiB} 2>/dev/null`;
  return [
    // Without its disk the guest would write a file in /dev, in its own RAM, and measure that.
    '[ -b /dev/vda ] || { echo "bench: no disk at /dev/vda"; exit 1; }',
    dd('if=/dev/zero of=/dev/vda oflag=direct conv=fsync'),
    `for i in $(seq ${runs}); do`,
    '  t0=$(cut -d" " -f1 /proc/uptime)',
    `  ${dd('if=/dev/zero of=/dev/vda oflag=direct conv=fsync')}`,
    '  t1=$(cut -d" " -f1 /proc/uptime)',
    `  ${dd('if=/dev/vda of=/dev/null iflag=direct')}`,
    '  t2=$(cut -d" " -f1 /proc/uptime)',
    '  echo "bench-write=$t0 $t1"',
    '  echo "bench-read=$t1 $t2"',
    `  tsvmm-random-read /dev/vda ${RANDOM_READ_SECONDS}`,
    'done',
  ].join('\n');
}

const vmms = {
  tsvmm: (image, cmdline) => [process.execPath, [join(root, 'dist', 'cli.js'),
    '--memory', 'size=512M', '--disk', `path=${image}`, '--cmdline', cmdline]],
  // cache=writeback (QEMU's default): the host page cache, as tsvmm's buffered fs I/O.
  'qemu microvm': (image, cmdline) => [QEMU_PROGRAM, qemuMicrovmArguments({
    kernel: out('vmlinux'), initramfs: out('initramfs.cpio.gz'), memoryMiB: 512, kernelParameters: cmdline,
    extra: ['-drive', `file=${image},if=none,id=d0,format=raw,cache=writeback`, '-device', 'virtio-blk-device,drive=d0'],
  })],
};

/** Boots one VMM with the script; resolves with its write and read MB/s samples. */
function measureGuest(name, image) {
  const [command, args] = vmms[name](image, `quiet -- ${initCommand(guestScript())}`);
  return new Promise((done, fail) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => { output += chunk; });
    child.stderr.on('data', (chunk) => { output += chunk; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const samples = { write: [], read: [], iops: [] };
      for (const [, kind, t0, t1] of output.matchAll(/^bench-(write|read)=([\d.]+) ([\d.]+)\r?$/gm)) {
        samples[kind].push(mbps(guestMiB * MiB, Number(t1) - Number(t0)));
      }
      for (const [, iops] of output.matchAll(/^random-read-iops=(\d+) /gm)) samples.iops.push(Number(iops));
      if (samples.read.length !== runs || samples.iops.length !== runs || !/^tsvmm-guest: exit 0\r?$/m.test(output)) {
        fail(new Error(`${name} did not finish the benchmark (exit ${code}):\n${output.slice(-2000)}`));
      } else {
        done(samples);
      }
    });
  });
}

async function guestPart() {
  await withTempDir(async (dir) => {
    step(`(b) real guests ${where}: dd with O_DIRECT, 1 MiB blocks, timed in the guest; 4 KiB random reads`);
    const image = join(dir, 'guest.img');
    createSparseImage(image, guestMiB * MiB);
    const summary = {};
    for (const name of Object.keys(vmms)) {
      const samples = await measureGuest(name, image);
      summary[name] = { write: median(samples.write), read: median(samples.read), iops: samples.iops };
    }
    const ceiling = { write: [], read: [] };
    for (let i = 0; i < runs; i++) {
      for (const direction of ['write', 'read']) {
        ceiling[direction].push(mbps(guestMiB * MiB, await rawFileSeconds(image, guestMiB * MiB, guestMiB * MiB, direction)));
      }
    }
    console.log(`\nsequential, dd bs=1M O_DIRECT on /dev/vda, ${guestMiB} MiB per pass, median of ${runs} passes `
      + `(same guest kernel, 512 MiB, 1 vCPU, same image file), ${where}:`);
    const widths = [44, 14, 14];
    console.log(formatRow(['', 'write (MB/s)', 'read (MB/s)'], widths));
    for (const [name, result] of Object.entries(summary)) {
      console.log(formatRow([`guest under ${name}`, result.write.toFixed(0), result.read.toFixed(0)], widths));
    }
    const ratio = (key) => (summary.tsvmm[key] / summary['qemu microvm'][key]).toFixed(2);
    console.log(formatRow(['tsvmm / qemu', ratio('write'), ratio('read')], widths));
    console.log(formatRow([`Node fs on the image file (${IN_FLIGHT} in flight)`,
      median(ceiling.write).toFixed(0), median(ceiling.read).toFixed(0)], widths));
    console.log(`\n4 KiB random reads, O_DIRECT, one at a time, ${RANDOM_READ_SECONDS} s per run, median [min-max] of ${runs} runs, ${where}:`);
    for (const [name, result] of Object.entries(summary)) {
      console.log(formatRow([`guest under ${name} (IOPS)`, medianAndSpread(result.iops)], widths));
    }
    console.log(formatRow(['tsvmm / qemu', (median(summary.tsvmm.iops) / median(summary['qemu microvm'].iops)).toFixed(2)], widths));
  });
}

async function main() {
  // The benchmark runs the compiled code (dist/): compile first if the sources changed.
  const build = spawnSync(process.execPath, [join(root, 'scripts', 'ensure-built.mjs')], { stdio: 'inherit' });
  if (build.status !== 0) return build.status ?? 1;
  if (!insideSandbox) await devicePart();
  if (flags['no-guest']) return 0;
  // Where the host cannot boot Linux, this re-runs the script inside the
  // sandbox, which then goes straight to (b).
  return runWhereKvmWorks(import.meta.url, guestPart);
}

process.exitCode = (await main()) ?? 0;
