// tsvmm-agent (guest-images/agent/tsvmm-agent.c) on this host, listening on
// a Unix socket instead of vsock (same protocol), driven by execOverStream
// (src/exec/exec.ts): output binary-safe and kept apart, stdin, exit
// statuses, concurrency, timeouts and aborts that kill the whole process
// group, a host that hangs up, bad requests, and an agent that leaves
// nothing behind. Every process the agent starts inherits a marker in its
// environment, so the suite can tell that none survives.
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  encodeFrame, encodeU32Frame, type Frame, FrameDecoder, FrameType,
} from '../../src/exec/protocol.js';
import { execOverStream, type ExecOptions, KILL_GRACE_MS } from '../../src/exec/exec.js';
import { ExecAbortError, ExecAgentError, ExecConnectionError, ExecTimeoutError } from '../../src/exec/errors.js';
import { processesMarkedWith } from '../helpers/processes.js';
import { waitFor } from '../helpers/vsock-guest.js';

const AGENT_SOURCE = new URL('../../guest-images/agent/tsvmm-agent.c', import.meta.url).pathname;
/** The build the docs give, plus -Werror: a warning is a finding. */
const CC_FLAGS = ['-static', '-Os', '-Wall', '-Wextra', '-Werror'];
/** Generous limits for a loaded 2-core machine: they stop a hung test, they measure nothing. */
const PROCESS_WAIT_MS = 15_000;
const SLOW_TEST_MS = 60_000;

/** Why the suite cannot run here, or undefined when cc links static programs. */
function missingToolchain(): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-cc-probe-'));
  try {
    const probe = spawnSync('cc', ['-static', '-x', 'c', '-o', join(dir, 'probe'), '-'], { input: 'int main(void) { return 0; }\n' });
    if (probe.error) return `no C compiler: cc cannot be run (${(probe.error as NodeJS.ErrnoException).code})`;
    if (probe.status !== 0) return 'cc cannot link a static program (install the static C library: libc6-dev)';
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Builds the agent into `dir` as the docs say (stdin closed: cc reads none); throws with cc's messages. */
async function buildAgent(dir: string): Promise<string> {
  const binary = join(dir, 'tsvmm-agent');
  const { stderr } = await promisify(execFile)('cc', [...CC_FLAGS, '-o', binary, AGENT_SOURCE]);
  expect(stderr).toBe('');
  return binary;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Pids whose parent is `parent`, zombies included. */
function childrenOf(parent: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent) children.push(Number(entry));
    } catch {
      // Gone already.
    }
  }
  return children;
}

/** True while `pid` is in the process table, as a zombie too. */
const inProcessTable = (pid: number) => existsSync(`/proc/${pid}`);

function connect(path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(path);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Everything the agent sends on a raw connection, up to its end, as frames. */
function framesUntilEnd(socket: net.Socket): Promise<Frame[]> {
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  return new Promise((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => frames.push(...decoder.push(chunk)));
    socket.on('end', () => {
      socket.destroy();
      resolve(frames);
    });
    socket.on('error', reject);
  });
}

const missing = missingToolchain();
/** Said in each suite's title, so that a skipped run says why. */
const skipReason = missing ? ` (skipped: ${missing})` : '';

describe.skipIf(missing !== undefined)(`tsvmm-agent over a Unix socket${skipReason}`, () => {
  const marker = `TSVMM_AGENT_TEST=${randomUUID()}`;
  let dir: string;
  let socketPath: string;
  let agent: ChildProcess;
  let agentStderr = '';

  const exec = async (command: string, options: ExecOptions = {}) => execOverStream(await connect(socketPath), command, options);

  /** Runs `command` (which must export `mark` and start processes) and returns their pids once they run. */
  const markedProcesses = async (mark: string, count: number): Promise<number[]> => {
    await waitFor(() => processesMarkedWith(mark).length >= count, `${count} processes marked ${mark}`, PROCESS_WAIT_MS);
    return processesMarkedWith(mark);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsvmm-agent-'));
    socketPath = join(dir, 'agent.sock');
    const binary = await buildAgent(dir);
    const [name, value] = marker.split('=') as [string, string];
    agent = spawn(binary, ['--unix', socketPath], { env: { ...process.env, [name]: value }, stdio: ['ignore', 'ignore', 'pipe'] });
    agent.stderr!.on('data', (chunk) => { agentStderr += chunk; });
    // The agent prints nothing when it is ready: connect until it answers.
    const deadline = Date.now() + PROCESS_WAIT_MS;
    for (;;) {
      try {
        (await connect(socketPath)).destroy();
        break;
      } catch (error) {
        if (Date.now() > deadline || agent.exitCode !== null) throw new Error(`the agent did not start: ${agentStderr}`, { cause: error });
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  }, SLOW_TEST_MS);

  // After a failed test: commands first, while the agent is there to reap
  // them (this machine's init may not), then the agent.
  afterAll(async () => {
    const kill = (pid: number) => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    };
    if (agent?.exitCode === null) {
      processesMarkedWith(marker).filter((pid) => pid !== agent.pid).forEach(kill);
      await waitFor(() => childrenOf(agent.pid!).length === 0, 'the agent to reap its children', PROCESS_WAIT_MS).catch(() => {});
      agent.kill('SIGKILL');
    }
    processesMarkedWith(marker).forEach(kill);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, SLOW_TEST_MS);

  it('runs a command, with stdout and stderr kept apart', async () => {
    const result = await exec('echo out; echo err >&2; echo more out');
    expect(result).toEqual({ status: 0, stdout: Buffer.from('out\nmore out\n'), stderr: Buffer.from('err\n') });
  });

  it.each([
    ['true', 0],
    ['false', 1],
    ['exit 42', 42],
    ['kill -9 $$', 137], // killed by signal 9: 128 + 9
    ['kill -TERM $$', 143],
    ['/no/such/program', 127],
  ])('reports the status of %s: %i', async (command, status) => {
    expect((await exec(command)).status).toBe(status);
  });

  it('returns 1 MiB of random binary output on each of stdout and stderr, byte for byte', async () => {
    const [out, err] = [join(dir, 'stdout.bin'), join(dir, 'stderr.bin')];
    const result = await exec(`head -c 1048576 /dev/urandom | tee ${out}; head -c 1048576 /dev/urandom | tee ${err} >&2`);
    expect(result.status).toBe(0);
    expect(result.stdout.length).toBe(1 << 20);
    expect(result.stderr.length).toBe(1 << 20);
    expect(sha256(result.stdout)).toBe(sha256(readFileSync(out)));
    expect(sha256(result.stderr)).toBe(sha256(readFileSync(err)));
  }, SLOW_TEST_MS);

  it('passes stdin through, then end of file', async () => {
    const input = randomBytes(256 * 1024);
    const result = await exec('cat', { stdin: input });
    expect(result.status).toBe(0);
    expect(sha256(result.stdout)).toBe(sha256(input));
    expect((await exec('tr a-z A-Z', { stdin: 'hello\n' })).stdout.toString()).toBe('HELLO\n');
    expect((await exec('cat; echo end')).stdout.toString()).toBe('end\n'); // no stdin: empty, not waiting
  }, SLOW_TEST_MS);

  it('finishes a command that ignores a large stdin', async () => {
    expect((await exec('exit 3', { stdin: randomBytes(8 << 20) })).status).toBe(3);
    expect((await exec('head -c 5', { stdin: randomBytes(8 << 20) })).stdout.length).toBe(5);
  }, SLOW_TEST_MS);

  it('runs 20 commands at once, each with its own output and status', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      exec(`head -c ${i * 1000} /dev/zero | tr '\\0' x; echo " ${i}"; echo e${i} >&2; exit ${i}`)));
    results.forEach((result, i) => {
      expect(result).toEqual({ status: i, stdout: Buffer.from(`${'x'.repeat(i * 1000)} ${i}\n`), stderr: Buffer.from(`e${i}\n`) });
    });
  }, SLOW_TEST_MS);

  it('kills the whole process group on timeout, and says so', async () => {
    const mark = `TSVMM_TIMEOUT_TEST=${randomUUID()}`;
    const running = exec(`export ${mark}; echo started; sleep 1000 & sleep 1000`, { timeoutMs: 3000 }).catch((error: Error) => error);
    const sleepers = await markedProcesses(mark, 2);
    const error = await running;
    expect(error).toBeInstanceOf(ExecTimeoutError);
    expect(error).toMatchObject({ name: 'ExecTimeoutError', timeoutMs: 3000, status: 137, stdout: Buffer.from('started\n') });
    expect((error as Error).message).toMatch(/^exec of "export .*" timed out after 3000 ms; it was killed$/);
    await waitFor(() => !sleepers.some(inProcessTable), 'the killed sleeps to leave the process table', PROCESS_WAIT_MS);
  }, SLOW_TEST_MS);

  it('kills the whole process group on abort', async () => {
    const mark = `TSVMM_ABORT_TEST=${randomUUID()}`;
    const controller = new AbortController();
    const running = exec(`export ${mark}; sleep 1000 & sleep 1000`, { signal: controller.signal }).catch((error: Error) => error);
    const sleepers = await markedProcesses(mark, 2);
    controller.abort(new Error('the test gave up'));
    const error = await running;
    expect(error).toBeInstanceOf(ExecAbortError);
    expect(error).toMatchObject({ name: 'AbortError', status: 137, cause: new Error('the test gave up') });
    await waitFor(() => !sleepers.some(inProcessTable), 'the killed sleeps to leave the process table', PROCESS_WAIT_MS);
    // Already aborted: nothing runs at all.
    await expect(exec('echo never', { signal: controller.signal })).rejects.toThrow(ExecAbortError);
  }, SLOW_TEST_MS);

  it('kills the whole process group when the host closes the connection first', async () => {
    const mark = `TSVMM_HANGUP_TEST=${randomUUID()}`;
    const socket = await connect(socketPath);
    socket.write(encodeFrame(FrameType.EXEC, Buffer.from(`export ${mark}; sleep 1000 & sleep 1000`)));
    const sleepers = await markedProcesses(mark, 2);
    socket.destroy();
    await waitFor(() => !sleepers.some(inProcessTable), 'the sleeps to be killed', PROCESS_WAIT_MS);
  }, SLOW_TEST_MS);

  it('does not wait for background processes a command leaves behind', async () => {
    const result = await exec('sleep 1000 > /dev/null 2>&1 & echo $!');
    expect(result.status).toBe(0);
    const pid = Number(result.stdout.toString());
    expect(inProcessTable(pid)).toBe(true);
    process.kill(pid, 'SIGKILL');
    // Re-parented to the agent (a subreaper), which reaps it.
    await waitFor(() => !inProcessTable(pid), 'the agent to reap the left-behind sleep', PROCESS_WAIT_MS);
  }, SLOW_TEST_MS);

  it.each([
    ['another protocol', Buffer.from('GET / HTTP/1.1\r\n\r\n'), /^unknown frame type 0x47$/],
    ['STDIN before EXEC', encodeFrame(FrameType.STDIN, Buffer.from('x')), /^the first frame must be EXEC/],
    ['a frame over the limit', Buffer.from([FrameType.STDIN, 0xff, 0xff, 0xff, 0x7f]), /over the limit/],
    ['EXEC twice', Buffer.concat([encodeFrame(FrameType.EXEC, Buffer.from('sleep 1000')), encodeFrame(FrameType.EXEC, Buffer.from('true'))]), /EXEC sent twice/],
    ['a KILL without a signal number', Buffer.concat([encodeFrame(FrameType.EXEC, Buffer.from('sleep 1000')), encodeFrame(FrameType.KILL)]), /^KILL needs/],
    ['a KILL of signal 0', Buffer.concat([encodeFrame(FrameType.EXEC, Buffer.from('sleep 1000')), encodeU32Frame(FrameType.KILL, 0)]), /^KILL needs/],
    ['STDIN after STDIN_EOF', Buffer.concat([encodeFrame(FrameType.EXEC, Buffer.from('sleep 1000')), encodeFrame(FrameType.STDIN_EOF), encodeFrame(FrameType.STDIN)]), /STDIN after STDIN_EOF/],
  ])('answers %s with one ERROR frame and closes, and keeps serving', async (_what, request, message) => {
    const socket = await connect(socketPath);
    const frames = framesUntilEnd(socket);
    socket.write(request);
    const received = await frames;
    expect(received.map((frame) => frame.type)).toEqual([FrameType.ERROR]);
    expect(received[0]!.payload.toString()).toMatch(message);
    expect((await exec('echo still here')).stdout.toString()).toBe('still here\n');
  }, SLOW_TEST_MS);

  it('refuses a command it cannot run, with ExecAgentError', async () => {
    await expect(exec('echo a\0b')).rejects.toThrow(ExecAgentError);
    // Over the kernel's limit for one argument (MAX_ARG_STRLEN, 128 KiB).
    await expect(exec(`# ${'x'.repeat(200_000)}`)).rejects.toThrow(/refused by the guest's agent: cannot run \/bin\/sh -c: Argument list too long/);
  }, SLOW_TEST_MS);

  /** A fake agent on a Unix socket: the client's stream and the server's end of it. */
  const fakeAgent = async (): Promise<{ client: net.Socket; server: net.Socket }> => {
    const path = join(dir, `fake-agent-${randomUUID()}.sock`);
    const listener = net.createServer();
    await new Promise<void>((resolve) => listener.listen(path, resolve));
    const accepted = new Promise<net.Socket>((resolve) => listener.once('connection', resolve));
    const client = await connect(path);
    const server = await accepted;
    server.on('error', () => {}); // a reset when the client drops the stream is expected
    listener.close();
    return { client, server };
  };

  it('rejects with ExecConnectionError when the connection ends before the exit status', async () => {
    const { client, server } = await fakeAgent();
    const running = execOverStream(client, 'echo hi').catch((error: Error) => error);
    server.end(encodeFrame(FrameType.STDOUT, Buffer.from('hi\n')));
    const error = await running;
    expect(error).toBeInstanceOf(ExecConnectionError);
    expect((error as Error).message).toBe('exec of "echo hi" failed: the connection ended before the command\'s exit status');
    server.destroy();
  });

  it('rejects with ExecProtocolError when the other end is not the agent', async () => {
    const { client, server } = await fakeAgent();
    const running = execOverStream(client, 'true').catch((error: Error) => error);
    server.write(Buffer.from([0x55, 0, 0, 0, 0]));
    expect(await running).toMatchObject({ name: 'ExecProtocolError', message: 'not the tsvmm-agent exec protocol: unexpected frame type 0x55' });
    server.destroy();
  });

  it('closes the stream after the grace period when the agent does not report the kill', async () => {
    const { client, server } = await fakeAgent();
    const received: Buffer[] = [];
    server.on('data', (chunk: Buffer) => received.push(chunk));
    const serverClosed = new Promise((resolve) => server.once('close', resolve));
    const error = await execOverStream(client, 'sleep 1000', { timeoutMs: 50 }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(ExecTimeoutError);
    expect(error).toMatchObject({ status: undefined, stdout: Buffer.alloc(0) });
    expect(client.destroyed).toBe(true);
    await serverClosed;
    const frames = new FrameDecoder().push(Buffer.concat(received)).map((frame) => frame.type);
    expect(frames).toEqual([FrameType.EXEC, FrameType.STDIN_EOF, FrameType.KILL]);
  }, SLOW_TEST_MS);

  it('refuses a timeout that is not a positive number', async () => {
    await expect(exec('true', { timeoutMs: 0 })).rejects.toThrow(RangeError);
    await expect(exec('true', { timeoutMs: Number.NaN })).rejects.toThrow(RangeError);
  });

  it('stops on SIGTERM, removes its socket file, and leaves no process and no zombie behind', async () => {
    // Connection processes end once their host has closed; each one, and
    // everything commands left behind, is reaped by the agent.
    await waitFor(() => childrenOf(agent.pid!).length === 0, 'the agent to have no children, zombies included', PROCESS_WAIT_MS + KILL_GRACE_MS);
    // A command still running when the agent stops: its connection's
    // process learns of it from the kernel (PR_SET_PDEATHSIG) and stops the
    // command's whole group. Before, both outlived the agent; a connection
    // the agent accepted late under load did too (a failed run).
    const mark = `TSVMM_AGENT_STOP_TEST=${randomUUID()}`;
    const running = exec(`export ${mark}; sleep 1000 & sleep 1000`).catch((error: Error) => error);
    await markedProcesses(mark, 2);
    const exited = new Promise((resolve) => agent.once('exit', (code, signal) => resolve({ code, signal })));
    agent.kill('SIGTERM');
    expect(await exited).toEqual({ code: 0, signal: null });
    expect(existsSync(socketPath)).toBe(false);
    expect(await running).toBeInstanceOf(ExecConnectionError);
    // They end after the agent (they learn of it when it has gone): wait for that.
    await waitFor(() => processesMarkedWith(marker).length === 0, 'every process the agent started to end', PROCESS_WAIT_MS);
    expect(agentStderr).toBe('');
  }, SLOW_TEST_MS);
});

describe.skipIf(missing !== undefined)(`tsvmm-agent's command line${skipReason}`, () => {
  let dir: string;
  let binary: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsvmm-agent-cli-'));
    binary = await buildAgent(dir);
  }, SLOW_TEST_MS);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    [['--port', 'abc'], 'tsvmm-agent: not a vsock port: abc'],
    [['--port', '4294967295'], 'tsvmm-agent: not a vsock port: 4294967295'],
    [['--verbose'], 'tsvmm-agent: unknown argument: --verbose'],
    [['--unix'], 'tsvmm-agent: a value must follow --unix'],
    [['--port', '-1'], 'tsvmm-agent: not a vsock port: -1'],
  ])('refuses %j in one line and a usage line, status 2', (args, message) => {
    // spawnSync: the agent exits at once, with nothing to wait for.
    const result = spawnSync(binary, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(result.status).toBe(2);
    expect(result.stderr).toBe(`${message}\nusage: tsvmm-agent [--port N | --unix PATH]\n`);
  });

  it('says why when it cannot listen', () => {
    const result = spawnSync(binary, ['--unix', join(dir, 'no-such-dir', 'agent.sock')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^tsvmm-agent: cannot listen on .*agent\.sock: No such file or directory\n$/);
  });
});
