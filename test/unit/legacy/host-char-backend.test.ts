import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CharBackend } from '../../../src/devices/char-backend.js';
import { CharBackendError, openCharBackend, restoreTerminal, type InputStream } from '../../../src/devices/host-char-backend.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tsvmm-backend-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A deterministic byte pattern that catches lost, repeated or reordered chunks. */
function pattern(size: number): Uint8Array {
  const data = new Uint8Array(size);
  let x = 12345;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  return data;
}

/** Writes `data` in small chunks of varying size, waiting for onDrain whenever write() says full. */
async function writeWithBackPressure(backend: CharBackend, data: Uint8Array): Promise<number> {
  let waitForDrain: (() => void) | undefined;
  backend.onDrain(() => waitForDrain?.());
  let offset = 0;
  let stalls = 0;
  while (offset < data.length) {
    const size = 1 + (offset % 97);
    const accepted = backend.write(data.subarray(offset, offset + size));
    offset += size;
    if (!accepted) {
      stalls++;
      await new Promise<void>((resolve) => { waitForDrain = resolve; });
    }
  }
  return stalls;
}

/** A stdout stand-in that completes each write later, like a slow terminal. */
function slowSink(): { stream: Writable; chunks: Buffer[] } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(Buffer.from(chunk));
      setImmediate(callback);
    },
  });
  return { stream, chunks };
}

function fakeTerminal(): InputStream & { rawModes: boolean[] } {
  const stdin = new PassThrough() as unknown as InputStream & { rawModes: boolean[] };
  stdin.isTTY = true;
  stdin.rawModes = [];
  stdin.setRawMode = (raw: boolean) => stdin.rawModes.push(raw);
  return stdin;
}

describe('file backend', () => {
  it('writes 10 MiB sent in small chunks exactly, honouring back-pressure', async () => {
    const path = join(dir, 'serial.log');
    const data = pattern(10 * 1024 * 1024);
    const backend = openCharBackend({ kind: 'file', path });
    const stalls = await writeWithBackPressure(backend, data);
    await backend.close();
    expect(stalls).toBeGreaterThan(0); // back-pressure really happened
    expect(readFileSync(path).equals(data)).toBe(true);
  });

  it('loses nothing when the writer ignores back-pressure', async () => {
    const path = join(dir, 'greedy.log');
    const data = pattern(1024 * 1024);
    const backend = openCharBackend({ kind: 'file', path });
    let refused = 0;
    for (let offset = 0; offset < data.length; offset += 7) {
      if (!backend.write(data.subarray(offset, offset + 7))) refused++;
    }
    await backend.close();
    expect(refused).toBeGreaterThan(0);
    expect(readFileSync(path).equals(data)).toBe(true);
  });

  it('truncates an existing file and can be closed twice', async () => {
    const path = join(dir, 'old.log');
    writeFileSync(path, 'previous run, much longer than the new output');
    const backend = openCharBackend({ kind: 'file', path });
    backend.write(Buffer.from('new'));
    await backend.close();
    await backend.close();
    expect(readFileSync(path, 'utf8')).toBe('new');
  });

  it('copies the bytes it is given, so the caller may reuse its buffer', async () => {
    const path = join(dir, 'reuse.log');
    const backend = openCharBackend({ kind: 'file', path });
    const buffer = new Uint8Array(1);
    for (const byte of Buffer.from('abc')) {
      buffer[0] = byte;
      backend.write(buffer);
    }
    await backend.close();
    expect(readFileSync(path, 'utf8')).toBe('abc');
  });

  it.skipIf(!existsSync('/dev/full'))('reports a failed write (disk full) from close()', async () => {
    const backend = openCharBackend({ kind: 'file', path: '/dev/full' });
    backend.write(Buffer.from('lost'));
    await expect(backend.close()).rejects.toThrow(/^writing \/dev\/full: ENOSPC/);
    expect(backend.write(Buffer.from('more'))).toBe(true); // nowhere to go, but the device is not stalled
  });

  it('fails with CharBackendError when the file cannot be created', () => {
    expect(() => openCharBackend({ kind: 'file', path: join(dir, 'missing', 'x.log') })).toThrow(CharBackendError);
    expect(existsSync(join(dir, 'missing'))).toBe(false);
  });
});

describe('tty backend', () => {
  it('forwards output in order through a slow stdout, with back-pressure, and close() flushes it', async () => {
    const sink = slowSink();
    const stdin = new PassThrough();
    const backend = openCharBackend({ kind: 'tty' }, { stdin, stdout: sink.stream });
    const data = pattern(256 * 1024);
    const stalls = await writeWithBackPressure(backend, data);
    await backend.close();
    expect(stalls).toBeGreaterThan(0);
    expect(Buffer.concat(sink.chunks).equals(data)).toBe(true);
  });

  it('hands the stream one chunk for the bytes written in one turn', async () => {
    const sink = slowSink();
    const backend = openCharBackend({ kind: 'tty' }, { stdin: new PassThrough(), stdout: sink.stream });
    for (const byte of Buffer.from('login: ')) backend.write(Uint8Array.of(byte));
    await backend.close();
    expect(sink.chunks.map((chunk) => chunk.toString())).toEqual(['login: ']);
  });

  it('forwards piped stdin (not a terminal) to the guest unchanged, without raw mode', async () => {
    const stdin = new PassThrough();
    const backend = openCharBackend({ kind: 'tty' }, { stdin, stdout: new PassThrough(), onQuitRequest: () => {} });
    const received: string[] = [];
    backend.onInput((data) => received.push(Buffer.from(data).toString('latin1')));
    stdin.write('echo hi\n\x01x');
    await new Promise((resolve) => setImmediate(resolve));
    await backend.close();
    expect(received.join('')).toBe('echo hi\n\x01x'); // no escapes on a pipe
  });

  it('puts a terminal in raw mode and restores it on close', async () => {
    const stdin = fakeTerminal();
    const backend = openCharBackend({ kind: 'tty' }, { stdin, stdout: new PassThrough() });
    expect(stdin.rawModes).toEqual([true]);
    await backend.close();
    expect(stdin.rawModes).toEqual([true, false]);
    restoreTerminal(); // already restored: nothing more
    expect(stdin.rawModes).toEqual([true, false]);
  });

  it('restoreTerminal() puts every raw terminal back, for signal handlers', () => {
    const stdin = fakeTerminal();
    openCharBackend({ kind: 'tty' }, { stdin, stdout: new PassThrough() });
    restoreTerminal();
    expect(stdin.rawModes).toEqual([true, false]);
  });

  it('on a terminal, Ctrl-A x asks to quit and Ctrl-A Ctrl-A sends one Ctrl-A, across chunks', async () => {
    const stdin = fakeTerminal();
    let quits = 0;
    const backend = openCharBackend({ kind: 'tty' }, { stdin, stdout: new PassThrough(), onQuitRequest: () => quits++ });
    const received: string[] = [];
    backend.onInput((data) => received.push(Buffer.from(data).toString('latin1')));
    stdin.write('a\x01');
    await new Promise((resolve) => setImmediate(resolve));
    stdin.write('xb\x01\x01c\x01d\x03');
    await new Promise((resolve) => setImmediate(resolve));
    await backend.close();
    expect(quits).toBe(1);
    expect(received.join('')).toBe('ab\x01c\x01d\x03');
  });
});

describe('null backend and off', () => {
  it('discards output and never blocks', async () => {
    const backend = openCharBackend({ kind: 'null' });
    expect(backend.write(new Uint8Array(1 << 20))).toBe(true);
    await expect(backend.close()).resolves.toBeUndefined();
  });

  it('refuses "off", which means no device at all', () => {
    expect(() => openCharBackend({ kind: 'off' })).toThrow('openCharBackend: mode "off" means no device; the caller must not create one');
  });
});
