// The library's `pipe` char backend: guest output readable in order with
// back-pressure (nothing dropped), caller input delivered, an end when closed.
import { describe, expect, it } from 'vitest';
import { PipeBackend } from '../../src/devices/pipe-char-backend.js';

describe('pipe char backend', () => {
  it('holds the guest back while the caller does not read, and lets it go on once it does', async () => {
    const backend = new PipeBackend();
    let drained = 0;
    backend.onDrain(() => drained++);
    const chunk = new Uint8Array(16 * 1024).fill(0x61);
    let accepted = 0;
    while (backend.write(chunk)) accepted++;
    expect(accepted).toBeLessThan(16); // stopped near its 64 KiB mark, not unbounded
    expect(drained).toBe(0);
    let received = 0;
    backend.callerEnd.on('data', (data: Buffer) => { received += data.byteLength; });
    await new Promise((resolve) => setImmediate(resolve));
    expect(drained).toBe(1);
    expect(received).toBe((accepted + 1) * chunk.byteLength); // the write that said "full" was kept too
    await backend.close();
  });

  it('gives the guest what the caller writes, in order, and ends the stream on close', async () => {
    const backend = new PipeBackend();
    const input: string[] = [];
    backend.onInput((data) => input.push(Buffer.from(data).toString()));
    backend.callerEnd.write('ls\n');
    backend.callerEnd.write('exit\n');
    await new Promise((resolve) => setImmediate(resolve));
    expect(input.join('')).toBe('ls\nexit\n');

    const output: Buffer[] = [];
    backend.callerEnd.on('data', (data: Buffer) => output.push(data));
    const ended = new Promise((resolve) => backend.callerEnd.on('end', resolve));
    const buffer = new Uint8Array([0x68, 0x69]);
    backend.write(buffer);
    buffer.fill(0); // the device reuses its buffer: the backend kept a copy
    await backend.close();
    await ended;
    expect(Buffer.concat(output).toString()).toBe('hi');
    expect(backend.write(new Uint8Array([1]))).toBe(true); // after close: discarded, never blocks the guest
  });
});
