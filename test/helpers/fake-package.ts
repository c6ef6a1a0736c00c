// Stand-ins for the configuration tests: a package root whose default guest
// images exist (as configFromOptions() looks for them in guest-images/out/),
// and the one line a mistake is reported with.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { ConfigError } from '../../src/config.js';

/** Creates `<dir>/pkg` with placeholder default guest images; returns its path. */
export function fakePackageRoot(dir: string): string {
  const root = join(dir, 'pkg');
  mkdirSync(join(root, 'guest-images', 'out'), { recursive: true });
  writeFileSync(join(root, 'guest-images', 'out', 'vmlinux'), 'kernel');
  writeFileSync(join(root, 'guest-images', 'out', 'initramfs.cpio.gz'), 'initramfs');
  return root;
}

/** The message of the ConfigError `make` throws (fails the test if it throws anything else, or nothing). */
export function configErrorOf(make: () => unknown): string {
  try {
    make();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
}
