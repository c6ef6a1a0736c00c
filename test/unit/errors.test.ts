// Errors the user can fix all extend ConfigError, which is what the CLI
// turns into exit status 2 and one line (src/cli.ts) and what Vm.start()
// promises to throw for them. A list of such classes kept somewhere else
// would miss the next one; this test reads every class declaration in src/
// instead, so a new error class must either extend ConfigError or be added
// to INTERNAL_ERRORS below with the reason it is not the user's fault.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/types.js';
import { CharBackendError } from '../../src/devices/host-char-backend.js';
import { BlockDeviceError } from '../../src/devices/virtio/block/disk-image.js';
import { KvmUnavailableError } from '../../src/kvm/kvm.js';
import { GuestRamError } from '../../src/memory/ram.js';

/** Errors that extend Error directly on purpose: each reports a bug, the guest, or the host at run time. */
const INTERNAL_ERRORS: ReadonlyMap<string, string> = new Map([
  ['VsockConnectError', 'a vsock connect that failed at run time (guest not listening or not answering, VM gone, timeout, abort); its subclasses say which'],
  ['SystemCallError', 'a failed system call; callers that know it is the user\'s fault wrap it in their own error'],
  ['GuestMemoryError', 'a guest address out of bounds: the guest\'s doing, it fails the request'],
  ['VirtqueueError', 'a malformed virtqueue: the guest\'s doing, it fails the device'],
  ['HostConnectError', 'a vsock connection to a host socket failed at run time; the guest gets a reset'],
  ['PortExhaustedError', 'the vsock device ran out of local ports at run time'],
  ['InfoRequested', '--help or --version: not an error at all'],
  ['ExecError', 'a command in the guest that did not run to its end (timeout, abort, lost connection, refused by the agent, not the agent protocol); its subclasses say which'],
  ['VmAbortedError', 'the caller aborted Vm.start() on purpose with its AbortSignal'],
]);

const SRC = new URL('../../src/', import.meta.url).pathname;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Every `class X extends Y` in src/: X -> { parent Y, file }. */
function classDeclarations(): Map<string, { parent: string; file: string }> {
  const classes = new Map<string, { parent: string; file: string }>();
  for (const file of sourceFiles(SRC)) {
    for (const match of readFileSync(file, 'utf8').matchAll(/^\s*(?:export\s+)?(?:abstract\s+)?class\s+(\w+)\s+extends\s+(\w+)/gm)) {
      classes.set(match[1]!, { parent: match[2]!, file: relative(SRC, file) });
    }
  }
  return classes;
}

describe('error classes', () => {
  const classes = classDeclarations();

  it('finds the error classes at all (the scan works)', () => {
    expect(classes.get('ConfigError')?.parent).toBe('Error');
    expect(classes.get('CommandLineError')?.parent).toBe('ConfigError');
  });

  it('every class that extends Error directly is ConfigError itself or a listed internal error', () => {
    const unlisted = [...classes]
      .filter(([name, { parent }]) => parent === 'Error' && name !== 'ConfigError' && !INTERNAL_ERRORS.has(name))
      .map(([name, { file }]) => `${name} (src/${file})`);
    // Each of these must extend ConfigError if it reports a user's mistake, or join INTERNAL_ERRORS with why not.
    expect(unlisted).toEqual([]);
  });

  it('the internal-error list names only classes that still exist and still extend Error', () => {
    for (const name of INTERNAL_ERRORS.keys()) expect(classes.get(name)?.parent, name).toBe('Error');
  });

  it.each([
    ['CharBackendError', () => new CharBackendError('x')],
    ['BlockDeviceError', () => new BlockDeviceError('x')],
    ['KvmUnavailableError', () => new KvmUnavailableError('x')],
    ['GuestRamError', () => new GuestRamError('x')],
  ])('%s is a ConfigError and keeps its own name', (name, create) => {
    const error = create();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.name).toBe(name);
  });
});
