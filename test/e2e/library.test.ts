// tsvmm as a library, through its API only (what `import ... from 'tsvmm'`
// gives): one real guest serves vsock echoes, connects back to a listener,
// and runs commands through vm.exec(); others show how a VM is stopped by an
// AbortSignal and that a bad option rejects with the CLI's line.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigError, ExecTimeoutError, Vm, VmAbortedError, VsockRefusedError, type VsockSocket,
} from '../../src/index.js';
import { imagesBuilt } from '../helpers/guest-images.js';
import { testCpuAffinity } from '../helpers/tsvmm.js';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const openFds = () => readdirSync('/proc/self/fd').length;

const ECHO_PORT = 1234;
const LISTEN_PORT = 5000;
const ECHOES = 8;
const ECHO_BYTES = 4 * 1024 * 1024;
const BINARY_OUTPUT_BYTES = 1024 * 1024;

/** Sends `data`, half-closes, and collects what comes back until the guest ends the stream. */
function echo(socket: VsockSocket, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('end', () => resolve(Buffer.concat(chunks)));
    socket.end(data);
  });
}

describe.skipIf(!imagesBuilt)('the library: vsock, exec and the serial stream of a running guest', () => {
  let dir: string;
  let vm: Vm;
  let serialText = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsvmm-library-'));
    vm = await Vm.start({
      cpus: 2,
      cpuAffinity: testCpuAffinity(2),
      memory: '512M',
      // The guest echoes every connection to port 1234 (socat forks a cat for each). -t 60: after the
      // host's half-close, socat waits that long for cat's last output; its default, 0.5 s, cut a slow
      // echo short on a loaded machine.
      cmdline: `quiet -- echo serial-says-hello; socat -t 60 VSOCK-LISTEN:${ECHO_PORT},fork,backlog=16 EXEC:cat`,
      vsock: { cid: 3, socket: join(dir, 'vm.vsock') },
      serial: 'pipe',
      timeoutSeconds: 1200,
    });
    vm.serial!.on('data', (chunk: Buffer) => { serialText += chunk; });
    // The agent answering means the guest is up; its first command proves exec works at all.
    expect((await vm.exec('echo up')).stdout.toString()).toBe('up\n');
  });

  afterAll(async () => {
    await vm?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives the guest\'s console as a stream', () => {
    expect(serialText).toMatch(/^serial-says-hello\r?$/m);
  });

  it(`echoes ${ECHOES} concurrent 4 MiB connections exactly`, async () => {
    const payloads = Array.from({ length: ECHOES }, () => randomBytes(ECHO_BYTES));
    const results = await Promise.all(payloads.map(async (payload) => {
      let socket: VsockSocket | undefined;
      while (socket === undefined) { // until the guest's socat listens
        try {
          socket = await vm.vsock!.connect(ECHO_PORT, { timeoutMs: 30_000, allowHalfOpen: true });
        } catch (error) {
          if (!(error instanceof VsockRefusedError)) throw error;
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
      return echo(socket, payload);
    }));
    // Lengths first: a short echo says "cut off", a same-length mismatch says "corrupted".
    expect(results.map((result) => result.length)).toEqual(payloads.map((payload) => payload.length));
    expect(results.map(sha256)).toEqual(payloads.map(sha256));
  });

  it('rejects a connect to a port nothing listens on as refused, not as a timeout', async () => {
    const error = await vm.vsock!.connect(4321, { timeoutMs: 3000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VsockRefusedError);
  });

  it(`serves ${ECHOES} guest-initiated connections with one listen()`, async () => {
    let served = 0;
    const listener = await vm.vsock!.listen(LISTEN_PORT, (socket) => {
      served++;
      socket.pipe(socket);
    });
    try {
      // Each guest client sends 64 KiB and checks the echo; -t 60: wait that long for the echo after sending.
      const script = `for i in $(seq ${ECHOES}); do ` +
        `( head -c 65536 /dev/urandom > /tmp/sent$i; socat -t 60 - VSOCK-CONNECT:2:${LISTEN_PORT} < /tmp/sent$i > /tmp/back$i; cmp /tmp/sent$i /tmp/back$i && echo same$i ) & ` +
        'done; wait';
      const result = await vm.exec(script);
      expect(result.stdout.toString().split('\n').filter(Boolean).sort())
        .toEqual(Array.from({ length: ECHOES }, (_, i) => `same${i + 1}`).sort());
      expect(served).toBe(ECHOES);
    } finally {
      await listener.close();
    }
    expect(existsSync(join(dir, `vm.vsock_${LISTEN_PORT}`))).toBe(false);
  });

  it('returns each command\'s status: 0, 1, 42, and 137 for a SIGKILL', async () => {
    const statuses = [];
    for (const command of ['true', 'exit 1', 'exit 42', 'kill -9 $$']) statuses.push((await vm.exec(command)).status);
    expect(statuses).toEqual([0, 1, 42, 137]);
  });

  it('keeps stdout and stderr apart and exact: 1 MiB of random bytes each', async () => {
    const result = await vm.exec(
      `head -c ${BINARY_OUTPUT_BYTES} /dev/urandom | tee /tmp/out.bin; head -c ${BINARY_OUTPUT_BYTES} /dev/urandom | tee /tmp/err.bin >&2`);
    expect(result.status).toBe(0);
    const recorded = (await vm.exec('sha256sum /tmp/out.bin /tmp/err.bin')).stdout.toString();
    expect(recorded).toBe(`${sha256(result.stdout)}  /tmp/out.bin\n${sha256(result.stderr)}  /tmp/err.bin\n`);
    expect(result.stdout.length).toBe(BINARY_OUTPUT_BYTES);
    expect(result.stderr.length).toBe(BINARY_OUTPUT_BYTES);
  });

  it('passes stdin through', async () => {
    const input = randomBytes(256 * 1024);
    const result = await vm.exec('cat', { stdin: input });
    expect(sha256(result.stdout)).toBe(sha256(input));
  });

  it('runs 20 commands at once, each with its own output and status', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      vm.exec(`echo out${i}; echo err${i} >&2; exit ${i % 7}`)));
    expect(results.map((r) => [r.stdout.toString(), r.stderr.toString(), r.status]))
      .toEqual(Array.from({ length: 20 }, (_, i) => [`out${i}\n`, `err${i}\n`, i % 7]));
  });

  it('kills a command that runs past its timeout, in the guest', async () => {
    const error = await vm.exec('sleep 1000', { timeoutMs: 2000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExecTimeoutError);
    expect((await vm.exec('ps -o args | grep -c "^sleep 1000"')).stdout.toString()).toBe('0\n');
  });
});

describe.skipIf(!imagesBuilt)('the library: how a VM ends', () => {
  it('an aborted signal stops the VM, and nothing is left behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsvmm-library-abort-'));
    const socket = join(dir, 'vm.vsock');
    const fdsBefore = openFds();
    const controller = new AbortController();
    const vm = await Vm.start({ cmdline: 'quiet -- sleep 1000', vsock: { cid: 3, socket }, signal: controller.signal });
    await vm.exec('true'); // the guest is up
    controller.abort();
    const exit = await vm.exited;
    expect(exit).toMatchObject({ reason: 'aborted', status: 130 });
    expect(existsSync(socket)).toBe(false);
    expect(openFds()).toBe(fdsBefore);
    rmSync(dir, { recursive: true, force: true });
  });

  it('rejects an already aborted signal before building anything', async () => {
    const error = await Vm.start({ signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VmAbortedError);
  });

  it('rejects a bad option with the line the CLI prints', async () => {
    const error = await Vm.start({ memory: '1M' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toBe('--memory: size=1M is too small: the guest needs at least 64M');
  });

  it('await using stops the VM when the scope ends', async () => {
    let exited: Promise<unknown>;
    {
      await using vm = await Vm.start({ cmdline: 'quiet -- sleep 1000' });
      exited = vm.exited;
    }
    expect(await exited).toMatchObject({ reason: 'signal' });
  });
});
