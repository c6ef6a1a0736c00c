// VsockHost.connect against the real vsock device (and, where tsvmm's
// behaviour cannot be forced, a stand-in that speaks the same protocol).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstatSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FIRST_HOST_PORT } from '../../../src/devices/virtio/vsock/port-allocator.js';
import {
  VsockAbortError, VsockConnectError, VsockHost, VsockRefusedError, VsockTimeoutError, VsockUnreachableError,
} from '../../../src/vsock-host/index.js';
import { sha256 } from '../../helpers/vsock-host.js';
import { type VsockFixture, readAll, startVsockFixture, twoLoopTurns } from './fixture.js';

const ECHO_PORT = 1234;
const SILENT_PORT = 7777;
const UNUSED_PORT = 4321;

let fixture: VsockFixture;

beforeEach(async () => {
  fixture = await startVsockFixture();
  fixture.sockets.listen(ECHO_PORT, { mode: 'echo' });
});

afterEach(async () => {
  await fixture.close();
});

/** Resolves with what `promise` rejected with; fails the test if it resolved. */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

function expectOneLine(error: Error): void {
  expect(error.message).not.toContain('\n');
  expect(error.message.length).toBeGreaterThan(0);
}

describe('connect to a listening guest port', () => {
  it('echoes 4 MiB of random bytes on each of 8 concurrent connections', async () => {
    const payloads = Array.from({ length: 8 }, () => randomBytes(4 << 20));
    const results = await Promise.all(payloads.map(async (payload) => {
      const socket = await fixture.vsock.connect(ECHO_PORT);
      const echoed = readAll(socket);
      socket.end(payload);
      return { hostPort: socket.hostPort, guestPort: socket.guestPort, echoed: await echoed };
    }));
    expect(results.map((r) => sha256(r.echoed))).toEqual(payloads.map(sha256));
    expect(new Set(results.map((r) => r.hostPort)).size).toBe(8);
    for (const r of results) {
      expect(r.hostPort).toBeGreaterThanOrEqual(FIRST_HOST_PORT);
      expect(r.guestPort).toBe(ECHO_PORT);
    }
  }, 120_000);

  it('delivers the guest\'s first bytes, sent together with its accept (OK line and data in one read)', async () => {
    const greeting = Buffer.from('hello from the guest, right after RESPONSE\n');
    fixture.sockets.listen(80, { mode: 'echo', greeting });
    const socket = await fixture.vsock.connect(80);
    const received = readAll(socket);
    socket.end('and the echo');
    expect((await received).toString()).toBe(`${greeting}and the echo`);
  });

  it('hands over a socket that pipe() and async iteration read from its first byte', async () => {
    fixture.sockets.listen(81, { mode: 'echo', greeting: Buffer.from('greeting|') });
    const socket = await fixture.vsock.connect(81);
    // Attached only after some turns of the event loop: nothing may be lost meanwhile.
    await twoLoopTurns();
    socket.end('echo');
    const chunks: Buffer[] = [];
    for await (const chunk of socket) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('greeting|echo');
  });
});

describe('connect failures, each a typed one-line error', () => {
  it('VsockRefusedError when nothing listens on the guest port (the guest resets)', async () => {
    const error = await rejection(fixture.vsock.connect(UNUSED_PORT));
    expect(error).toBeInstanceOf(VsockRefusedError);
    expect(error).toBeInstanceOf(VsockConnectError);
    expect(error).toMatchObject({ name: 'VsockRefusedError', guestPort: UNUSED_PORT, socketPath: fixture.guest.socketPath });
    expectOneLine(error);
  });

  it('VsockRefusedError, not a timeout, when the guest never answers: tsvmm gives up after 2 s, within a 3 s deadline', async () => {
    fixture.sockets.listen(SILENT_PORT, { mode: 'ignore' });
    const error = await rejection(fixture.vsock.connect(SILENT_PORT, { timeoutMs: 3000 }));
    expect(error).toBeInstanceOf(VsockRefusedError);
  }, 10_000);

  it('VsockTimeoutError when the guest does not answer within timeoutMs', async () => {
    fixture.sockets.listen(SILENT_PORT, { mode: 'ignore' });
    const error = await rejection(fixture.vsock.connect(SILENT_PORT, { timeoutMs: 100 }));
    expect(error).toBeInstanceOf(VsockTimeoutError);
    expect(error).toMatchObject({ name: 'VsockTimeoutError', timeoutMs: 100 });
    expectOneLine(error);
  });

  it('VsockUnreachableError (ENOENT) when the socket file does not exist', async () => {
    const missing = new VsockHost(join(dirname(fixture.guest.socketPath), 'no-such-vm.vsock'));
    const error = await rejection(missing.connect(ECHO_PORT));
    expect(error).toBeInstanceOf(VsockUnreachableError);
    expect(error).toMatchObject({ code: 'ENOENT' });
    expectOneLine(error);
  });

  it('VsockUnreachableError (ECONNREFUSED) when the VM that made the socket is gone', async () => {
    const path = join(dirname(fixture.guest.socketPath), 'dead.vsock');
    // A socket file nobody listens on: a child binds it and exits without cleaning up.
    spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`]);
    expect(lstatSync(path).isSocket()).toBe(true);
    const error = await rejection(new VsockHost(path).connect(ECHO_PORT));
    expect(error).toBeInstanceOf(VsockUnreachableError);
    expect(error).toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('VsockAbortError for a signal aborted before the call', async () => {
    const reason = new Error('changed my mind');
    const error = await rejection(fixture.vsock.connect(ECHO_PORT, { signal: AbortSignal.abort(reason) }));
    expect(error).toBeInstanceOf(VsockAbortError);
    expect(error).toMatchObject({ name: 'AbortError', cause: reason });
    expectOneLine(error);
  });

  it('VsockAbortError when the signal fires while the guest has not answered yet', async () => {
    let requested!: () => void;
    const requestSeen = new Promise<void>((resolve) => { requested = resolve; });
    fixture.sockets.listen(SILENT_PORT, { mode: 'ignore', onRequest: () => requested() });
    const controller = new AbortController();
    const connecting = fixture.vsock.connect(SILENT_PORT, { signal: controller.signal });
    await requestSeen;
    controller.abort('stop');
    const error = await rejection(connecting);
    expect(error).toBeInstanceOf(VsockAbortError);
    expect(error).toMatchObject({ cause: 'stop' });
  });

  it('VsockAbortError for connects under way when the VsockHost closes', async () => {
    fixture.sockets.listen(SILENT_PORT, { mode: 'ignore' });
    const failed = rejection(fixture.vsock.connect(SILENT_PORT));
    await fixture.vsock.close();
    expect(await failed).toBeInstanceOf(VsockAbortError);
    expect(await rejection(fixture.vsock.connect(ECHO_PORT))).toBeInstanceOf(VsockAbortError);
  });

  it('RangeError for a port that is not a u32, and for a bad timeout', async () => {
    await expect(fixture.vsock.connect(-1)).rejects.toThrow(RangeError);
    await expect(fixture.vsock.connect(2 ** 32)).rejects.toThrow(RangeError);
    await expect(fixture.vsock.connect(1.5)).rejects.toThrow(RangeError);
    await expect(fixture.vsock.connect(ECHO_PORT, { timeoutMs: 0 })).rejects.toThrow(RangeError);
  });
});

/**
 * A stand-in for tsvmm's listening socket that answers every CONNECT with
 * `reply`, written in the given pieces, each read by the client before the
 * next is written; then closes. Only the stand-in can split the OK line:
 * tsvmm writes it in one piece.
 */
async function standIn(path: string, pieces: Buffer[]): Promise<net.Server> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    let line = '';
    const onData = async (chunk: Buffer): Promise<void> => {
      line += chunk.toString('latin1');
      if (!line.includes('\n')) return;
      socket.off('data', onData);
      for (const piece of pieces) {
        await new Promise((resolve) => socket.write(piece, resolve));
        await twoLoopTurns();
      }
      socket.end();
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return server;
}

describe('the OK line as tsvmm\'s socket may deliver it', () => {
  const reply = Buffer.from('OK 1073741824\nthe guest\'s first bytes');
  const lineLength = reply.indexOf('\n') + 1;

  async function connectThroughStandIn(pieces: Buffer[]): Promise<{ hostPort: number; data: string }> {
    const path = join(dirname(fixture.guest.socketPath), 'stand-in.vsock');
    const server = await standIn(path, pieces);
    const host = new VsockHost(path);
    try {
      const socket = await host.connect(5);
      return { hostPort: socket.hostPort, data: (await readAll(socket)).toString('latin1') };
    } finally {
      await host.close();
      await new Promise((resolve) => server.close(resolve));
    }
  }

  it('split at every byte of the line, the data in the second piece', async () => {
    for (let at = 1; at <= lineLength; at++) {
      const result = await connectThroughStandIn([reply.subarray(0, at), reply.subarray(at)]);
      expect(result, `split after byte ${at}`).toEqual({ hostPort: 1073741824, data: 'the guest\'s first bytes' });
    }
  });

  it('one byte at a time', async () => {
    const pieces = Array.from({ length: reply.length }, (_, i) => reply.subarray(i, i + 1));
    expect(await connectThroughStandIn(pieces)).toEqual({ hostPort: 1073741824, data: 'the guest\'s first bytes' });
  });

  it('in one piece with the data', async () => {
    expect(await connectThroughStandIn([reply])).toEqual({ hostPort: 1073741824, data: 'the guest\'s first bytes' });
  });

  it('VsockConnectError when the socket answers something else than an OK line', async () => {
    const path = join(dirname(fixture.guest.socketPath), 'not-tsvmm.vsock');
    const server = await standIn(path, [Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')]);
    try {
      const error = await rejection(new VsockHost(path).connect(5));
      expect(error.constructor).toBe(VsockConnectError);
      expect(error.message).toContain('expected "OK <port>"');
      expectOneLine(error);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
