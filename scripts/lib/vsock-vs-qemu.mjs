// bench:vsock's peer reference: the same guest kernel, initramfs and socat
// workload under tsvmm and under QEMU microvm with `vhost-vsock-device` (the
// Linux kernel's own vsock device back end), one after the other on the same
// machine (inside the nested sandbox here, whose kernel has vhost-vsock).
//
// The host ends differ by nature: tsvmm's is a Unix socket (`<socket>_<port>`
// and the CONNECT line), QEMU's an AF_VSOCK socket. Both are served by the same
// program, socat, so that neither VMM's figure includes a different host
// program. Throughput is timed in the guest (/proc/uptime, 10 ms steps), from
// before its socat connects until dd has all the bytes, so the host's timing
// of the two kinds of socket plays no part; round trips are timed on the host,
// through a socat child's stdin and stdout (the same extra hops for both).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { initCommand } from './guest-command.mjs';
import { pingPong } from './ping-pong.mjs';
import { QEMU_PROGRAM, qemuMicrovmArguments } from './qemu-microvm.mjs';

const CHUNK = 64 * 1024;
const MiB = 1024 * 1024;
const GUEST_CID = 3;
const PORTS = { guestToHost: 7002, hostToGuest: 7001, roundTrips: 7003 };
/** Longest wait for the whole guest run before it counts as failed. */
const RUN_TIMEOUT_MS = 900_000;

/**
 * The guest's part, the same under both VMMs: `runs` transfers each way,
 * each bracketed by /proc/uptime and checked by dd's byte count, then an
 * echo service for the host's round trips.
 */
function guestScript({ bytes, runs }) {
  const count = bytes / CHUNK;
  return [
    "now() { cut -d' ' -f1 /proc/uptime; }",
    `for r in $(seq ${runs}); do`,
    '  t0=$(now)',
    // socat's status says whether every byte went out (the pipeline's status is its last command's).
    `  dd if=/dev/zero bs=${CHUNK} count=${count} 2>/dev/null | socat -u -b ${CHUNK} - VSOCK-CONNECT:2:${PORTS.guestToHost} && sent=${bytes} || sent=0`,
    '  t1=$(now)',
    '  echo "bench-guest-to-host=$t0 $t1 $sent"',
    'done',
    `for r in $(seq ${runs}); do`,
    '  t0=$(now)',
    // Whole blocks only (fullblock): busybox's dd counts records, not bytes; a short last one shows as +1 and fails the check.
    `  records=$(socat -u -b ${CHUNK} VSOCK-CONNECT:2:${PORTS.hostToGuest} - | dd of=/dev/null bs=${CHUNK} iflag=fullblock 2>&1 | sed -n 's/^\\([0-9]*\\)+0 records in$/\\1/p')`,
    '  t1=$(now)',
    `  echo "bench-host-to-guest=$t0 $t1 $((records * ${CHUNK}))"`,
    'done',
    'echo bench-round-trips',
    `socat -b ${CHUNK} VSOCK-LISTEN:${PORTS.roundTrips} PIPE`,
  ].join('\n');
}

/** Where each VMM's guest reaches the host, and how to start it. */
function vmms(dir, { kernel, initramfs }) {
  const socketPath = join(dir, 'peer.vsock');
  return {
    tsvmm: {
      listen: (port) => `UNIX-LISTEN:${socketPath}_${port},fork`,
      connect: () => `UNIX-CONNECT:${socketPath}`,
      // tsvmm's host side asks for the guest port in its first line (docs/vsock.md).
      preamble: (port) => `CONNECT ${port}\n`,
      command: (root, cmdline) => [process.execPath, [join(root, 'dist', 'cli.js'), '--memory', 'size=512M',
        '--vsock', `cid=${GUEST_CID},socket=${socketPath}`, '--cmdline', cmdline]],
    },
    'qemu vhost-vsock': {
      listen: (port) => `VSOCK-LISTEN:${port},fork`,
      connect: (port) => `VSOCK-CONNECT:${GUEST_CID}:${port}`,
      preamble: () => '',
      command: (_root, cmdline) => [QEMU_PROGRAM, qemuMicrovmArguments({
        kernel, initramfs, memoryMiB: 512, kernelParameters: cmdline,
        extra: ['-device', `vhost-vsock-device,guest-cid=${GUEST_CID}`],
      })],
    },
  };
}

/** A socat child; `stop()` ends it and waits for it. */
function socat(args) {
  const child = spawn('socat', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  // A refused connection ends socat at once: writes to it then fail (EPIPE), and the exit says so.
  child.stdin.on('error', () => {});
  let errors = '';
  child.stderr.on('data', (chunk) => { errors += chunk; });
  const exited = new Promise((done) => child.once('exit', (code) => done(code)));
  return {
    child, exited, errors: () => errors,
    stop: () => { child.kill('SIGTERM'); return exited; },
  };
}

/**
 * Connects a socat child's stdio to the guest's echo port, retrying until the
 * guest listens (its listener comes up after the transfers), and measures
 * `rounds` 64-byte round trips through it.
 */
async function roundTrips(vmm, rounds, guestDone) {
  for (;;) {
    const peer = socat(['-d', '-d', '-b', String(CHUNK), 'STDIO', vmm.connect(PORTS.roundTrips)]);
    const connected = await new Promise((done) => {
      let text = '';
      const preamble = vmm.preamble(PORTS.roundTrips);
      const onData = (chunk) => {
        text += chunk;
        if (!text.includes('\n')) return;
        peer.child.stdout.off('data', onData);
        done(/^OK \d+\n$/.test(text));
      };
      const onLog = () => {
        if (!peer.errors().includes('starting data transfer loop')) return;
        peer.child.stderr.off('data', onLog);
        if (!preamble) return done(true);
        peer.child.stdout.on('data', onData);
        peer.child.stdin.write(preamble);
      };
      peer.child.stderr.on('data', onLog);
      void peer.exited.then(() => done(false));
    });
    if (connected) {
      try {
        const times = await pingPong({ readable: peer.child.stdout, writable: peer.child.stdin }, rounds);
        peer.child.stdin.end();
        await peer.exited;
        return times;
      } finally {
        await peer.stop();
      }
    }
    await peer.stop();
    if (await Promise.race([guestDone, new Promise((r) => setTimeout(() => r(false), 200))]) !== false) {
      throw new Error('the guest ended before it served round trips');
    }
  }
}

/** Seconds and bytes of each `bench-<kind>=t0 t1 bytes` line of the guest's console. */
function transfers(output, kind) {
  return [...output.matchAll(new RegExp(`^bench-${kind}=([\\d.]+) ([\\d.]+) (\\d*)\\r?$`, 'gm'))]
    .map(([, t0, t1, bytes]) => ({ seconds: Number(t1) - Number(t0), bytes: Number(bytes) }));
}

/**
 * Boots the guest under one VMM with the host's socat ends in place;
 * resolves with `{ guestToHost, hostToGuest }` (GB/s per run) and `rtt` (ns, sorted).
 */
async function measureOne(root, name, vmm, { bytes, runs, rttRounds }) {
  const sink = socat(['-u', '-b', String(CHUNK), vmm.listen(PORTS.guestToHost), 'OPEN:/dev/null']);
  const source = socat(['-U', '-b', String(CHUNK), vmm.listen(PORTS.hostToGuest), `OPEN:/dev/zero,readbytes=${bytes}`]);
  const [program, args] = vmm.command(root, `quiet -- ${initCommand(guestScript({ bytes, runs }))}`);
  const vm = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  vm.stdout.on('data', (chunk) => { output += chunk; });
  vm.stderr.on('data', (chunk) => { output += chunk; });
  const timer = setTimeout(() => vm.kill('SIGKILL'), RUN_TIMEOUT_MS);
  const exited = new Promise((done) => vm.once('exit', (code, signal) => done({ code, signal })));
  const failure = (why) => new Error(`${name}: ${why}; host ends: sink ${sink.errors().trim() || 'no errors'}, `
    + `source ${source.errors().trim() || 'no errors'}; the VMM's output ended with:\n${output.slice(-2000)}`);
  try {
    const rtt = await roundTrips(vmm, rttRounds, exited).catch((error) => { throw failure(error.message); });
    const { code, signal } = await exited;
    const guestToHost = transfers(output, 'guest-to-host');
    const hostToGuest = transfers(output, 'host-to-guest');
    const complete = (samples) => samples.length === runs && samples.every((s) => s.bytes === bytes && s.seconds > 0);
    if (code !== 0 || !complete(guestToHost) || !complete(hostToGuest)) {
      throw failure(`the guest did not finish the benchmark (exit ${code ?? signal})`);
    }
    const gbps = (samples) => samples.map((s) => s.bytes / s.seconds / 1e9);
    return { guestToHost: gbps(guestToHost), hostToGuest: gbps(hostToGuest), rtt };
  } finally {
    clearTimeout(timer);
    vm.kill('SIGKILL');
    await Promise.all([sink.stop(), source.stop()]);
  }
}

/**
 * Measures tsvmm, then QEMU with vhost-vsock; resolves with each one's
 * result, keyed by name ('tsvmm', 'qemu vhost-vsock').
 */
export async function measureAgainstQemu({ root, dir, images, mib, runs, rttRounds = 1000 }) {
  const results = {};
  for (const [name, vmm] of Object.entries(vmms(dir, images))) {
    results[name] = await measureOne(root, name, vmm, { bytes: mib * MiB, runs, rttRounds });
  }
  return results;
}
