import { describe, expect, it } from 'vitest';
import { PayloadPool, ScatterWriter, allocAlignedLike, copyBytes, gather } from '../../../src/devices/virtio/vsock/copy.js';

const shared = () => new Uint8Array(new SharedArrayBuffer(1 << 20));
function pattern(length: number): Buffer {
  return Buffer.from(Array.from({ length }, (_, i) => (i * 13 + 5) & 0xff));
}

describe('copies to and from shared guest memory', () => {
  it('copies exactly, whatever the relative alignment (staged or not)', () => {
    const source = pattern(100_000 + 16);
    for (const sourceOffset of [0, 3, 4]) {
      for (const targetOffset of [0, 44, 45]) {
        const memory = shared();
        const piece = source.subarray(sourceOffset, sourceOffset + 100_000);
        copyBytes(memory.subarray(targetOffset), piece);
        expect(Buffer.from(memory.buffer, targetOffset, 100_000).equals(piece)).toBe(true);
        expect(memory[targetOffset + 100_000]).toBe(0); // nothing past the end
        if (targetOffset > 0) expect(memory[targetOffset - 1]).toBe(0);
      }
    }
  });

  it('allocates buffers aligned like their source', () => {
    const memory = shared();
    expect(allocAlignedLike(memory.subarray(44), 4096).byteOffset % 8).toBe(4);
    expect(allocAlignedLike(memory.subarray(3), 4096).byteOffset % 8).toBe(3);
    expect(allocAlignedLike(undefined, 4096).length).toBe(4096);
  });

  it('scatters pieces over several target segments in order', () => {
    const memory = shared();
    const targets = [memory.subarray(44, 100), memory.subarray(1000, 1003), memory.subarray(2000, 3000)];
    const writer = new ScatterWriter(targets);
    const data = pattern(56 + 3 + 1000);
    writer.write(data.subarray(0, 10));
    writer.write(data.subarray(10, 700));
    writer.write(data.subarray(700));
    expect(Buffer.concat(targets.map((t) => Buffer.from(t))).equals(data)).toBe(true);
    expect(() => writer.write(Buffer.alloc(1))).toThrow(/more bytes than room/);
  });

  it('gathers segments into one buffer', () => {
    const memory = shared();
    const data = pattern(5000);
    memory.set(data.subarray(0, 2000), 44);
    memory.set(data.subarray(2000), 9000);
    const out = gather([memory.subarray(44, 2044), memory.subarray(9000, 12000)], 5000);
    expect(out.equals(data)).toBe(true);
    expect(out.byteOffset % 8).toBe(4);
  });

  it('reuses payload buffers once released, and keeps their contents apart', () => {
    const memory = shared();
    const pool = new PayloadPool(64 * 1024 + 8, 2);
    memory.set(pattern(60_000), 44);
    const a = pool.gather([memory.subarray(44, 60_044)], 60_000);
    expect(a.equals(pattern(60_000))).toBe(true);
    const b = pool.gather([memory.subarray(44, 5044)], 5000);
    expect(b.buffer).not.toBe(a.buffer); // a is still in use
    const small = pool.gather([memory.subarray(44, 144)], 100);
    expect(small.buffer.byteLength).not.toBe(64 * 1024 + 8); // small payloads stay out of the pool
    expect(small.equals(pattern(100))).toBe(true);
    pool.release(a);
    const c = pool.gather([memory.subarray(44, 5044)], 5000);
    expect(c.buffer).toBe(a.buffer);
    expect(c.equals(pattern(5000))).toBe(true);
    // Too big for the pool: a one-off buffer that is never pooled.
    const big = pool.gather([memory.subarray(0, 70_000)], 70_000);
    expect(big.buffer.byteLength).toBeGreaterThanOrEqual(70_000);
    pool.release(big);
    expect(pool.gather([memory.subarray(0, 100)], 100).buffer).not.toBe(big.buffer);
  });
});
