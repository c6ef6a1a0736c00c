// ImageFile: the kernel or initramfs file the loaders read by position,
// straight into guest RAM. Its failures are one-line ConfigErrors naming the
// option and the file, a file that shrinks while it is read is an error (not
// zeros), and no failure leaves its fd open.
import { mkdtempSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/config/types.js';
import { GuestMemory } from '../../../src/memory/guest-memory.js';
import { ImageFile } from '../../../src/vm/image-file.js';
import { pattern } from '../arch/synthetic-images.js';

const scratch = mkdtempSync(join(tmpdir(), 'tsvmm-image-file-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

describe('ImageFile', () => {
  it('reads the bytes asked for, at the position asked for, into a view of guest memory', () => {
    const path = join(scratch, 'image');
    const bytes = pattern(0x5000, 3);
    writeFileSync(path, bytes);
    const memory = GuestMemory.allocate(0x10000);
    const file = ImageFile.open(path, '--kernel');
    try {
      expect(file.size).toBe(0x5000);
      file.readInto(memory.slice(0x8000, 0x3000), 0x2000);
      file.readInto(memory.slice(0x100, 0x10), 0);
    } finally {
      file.close();
    }
    expect(memory.slice(0x8000, 0x3000)).toEqual(bytes.subarray(0x2000));
    expect(memory.slice(0x100, 0x10)).toEqual(bytes.subarray(0, 0x10));
    expect(memory.readU8(0x7fff)).toBe(0);
    expect(memory.readU8(0xb000)).toBe(0);
  });

  it('fails, naming the option and file, when the file ends before what it was opened with', () => {
    const path = join(scratch, 'shrinks');
    writeFileSync(path, pattern(0x3000));
    const file = ImageFile.open(path, '--initramfs');
    try {
      truncateSync(path, 0x1800); // as if rewritten while tsvmm reads it
      const call = () => file.readInto(new Uint8Array(0x3000), 0);
      expect(call).toThrow(ConfigError);
      expect(call).toThrow(`--initramfs: ${path} ended at byte 6144, but was 12288 bytes when opened: was it changed while tsvmm read it?`);
    } finally {
      file.close();
    }
  });

  it.each([
    ['a missing file', join(scratch, 'no-such-file'), 'no such file'],
    ['a directory', scratch, 'is a directory'],
    ['a character device', '/dev/null', 'not a regular file'],
  ])('refuses %s with a one-line ConfigError and no fd left open', (_what, path, problem) => {
    const before = openFdCount();
    const call = () => ImageFile.open(path, '--kernel');
    expect(call).toThrow(ConfigError);
    expect(call).toThrow(`--kernel: cannot read ${path}: ${problem}`);
    expect(openFdCount()).toBe(before);
  });

  it('close() releases the fd, once', () => {
    const path = join(scratch, 'closed');
    writeFileSync(path, pattern(16));
    const before = openFdCount();
    const file = ImageFile.open(path, '--kernel');
    expect(openFdCount()).toBe(before + 1);
    file.close();
    file.close();
    expect(openFdCount()).toBe(before);
    expect(() => file.readInto(new Uint8Array(1), 0)).toThrow(/read after it was closed/);
  });
});
