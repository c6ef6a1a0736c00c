// Disk image locking (src/devices/virtio/block/disk-image.ts) between real
// processes: this test process opens an image with DiskImage.open, and a
// child process holds it (or tries to) the way another tsvmm, Cloud
// Hypervisor (a lock on the whole file) or QEMU (qemu-io, when installed)
// does. The child is tsvmm's own code: the modules it needs are transpiled
// into a folder of node_modules, where Node finds koffi.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlockDeviceError, DiskImage } from '../../../src/devices/virtio/block/disk-image.js';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const scratch = mkdtempSync(join(tmpdir(), 'tsvmm-disk-lock-'));
const compiled = join(projectRoot, 'node_modules', `.tsvmm-disk-lock-test-${process.pid}`);
afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
  rmSync(compiled, { recursive: true, force: true });
});

/** Transpiles `entry` (a .ts file of src/) and every module it imports, relative paths kept. */
function transpileWithImports(entry: string): void {
  const pending = [entry];
  const done = new Set<string>();
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (done.has(file)) continue;
    done.add(file);
    const source = readFileSync(file, 'utf8');
    const { outputText } = ts.transpileModule(source, {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    });
    const out = join(compiled, relative(projectRoot, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, outputText);
    for (const [, spec] of outputText.matchAll(/from\s+['"](\.[^'"]+)\.js['"]/g)) {
      pending.push(resolve(dirname(file), `${spec}.ts`));
    }
  }
}

const moduleUrl = (src: string) => pathToFileURL(join(compiled, src.replace(/\.ts$/, '.js'))).href;

/**
 * The child: `tsvmm <path> ro|rw` opens the image as tsvmm does; `whole-file
 * <path> read|write` takes a lock on the whole file, as Cloud Hypervisor
 * does. It prints "holding" or "refused: <message>", then holds the image
 * until its stdin closes.
 */
const CHILD = (diskImageUrl: string, libcUrl: string) => `
import { openSync } from 'node:fs';
const { DiskImage } = await import(${JSON.stringify(diskImageUrl)});
const { trySetOfdLock, F_RDLCK, F_WRLCK } = await import(${JSON.stringify(libcUrl)});
const [kind, path, mode] = process.argv.slice(2);
try {
  if (kind === 'tsvmm') {
    await DiskImage.open(path, mode === 'ro');
  } else {
    const fd = openSync(path, mode === 'read' ? 'r' : 'r+');
    if (!trySetOfdLock(fd, mode === 'read' ? F_RDLCK : F_WRLCK, 0, 0)) throw new Error('the file is already locked');
  }
  console.log('holding');
} catch (error) {
  console.log('refused: ' + error.message);
  process.exit(0);
}
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
`;
const childScript = join(scratch, 'child.mjs');

transpileWithImports(join(projectRoot, 'src/devices/virtio/block/disk-image.ts'));
writeFileSync(childScript, CHILD(moduleUrl('src/devices/virtio/block/disk-image.ts'), moduleUrl('src/sys/libc.ts')));

const children: ChildProcessWithoutNullStreams[] = [];

/** Starts a child and resolves with its first line: "holding" or "refused: ...". */
async function child(...args: string[]): Promise<{ answer: string; release: () => Promise<void>; kill: () => Promise<void> }> {
  const process_ = spawn(process.execPath, [childScript, ...args]);
  children.push(process_);
  const exited = new Promise<void>((done) => process_.on('close', () => done()));
  let output = '';
  const answer = await new Promise<string>((done, fail) => {
    process_.stdout.on('data', (chunk) => {
      output += chunk;
      if (output.includes('\n')) done(output.split('\n')[0]!);
    });
    process_.stderr.on('data', (chunk) => { output += chunk; });
    process_.on('close', () => fail(new Error(`child ${args.join(' ')} ended without an answer:\n${output}`)));
  });
  return {
    answer,
    release: async () => { process_.stdin.end(); await exited; },
    kill: async () => { process_.kill('SIGKILL'); await exited; },
  };
}

let image: string;
const open: DiskImage[] = [];
beforeEach(() => {
  image = join(mkdtempSync(join(scratch, 'case-')), 'disk.img');
  writeFileSync(image, Buffer.alloc(64 * 1024));
});
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const disk of open.splice(0)) await disk.close();
});

async function openHere(readonly: boolean): Promise<DiskImage> {
  const disk = await DiskImage.open(image, readonly);
  open.push(disk);
  return disk;
}

/** The BlockDeviceError DiskImage.open throws (fails the test if it opens). */
async function refusal(readonly: boolean): Promise<BlockDeviceError> {
  const error = await openHere(readonly).then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(BlockDeviceError);
  return error as BlockDeviceError;
}

// Generous: each case starts a Node process, which is slow on a loaded machine.
describe('disk image locks between tsvmm processes', { timeout: 60_000 }, () => {
  it('refuses a second read-write open while another process writes the image', async () => {
    const other = await child('tsvmm', image, 'rw');
    expect(other.answer).toBe('holding');
    expect((await refusal(false)).message).toBe(`disk image ${image} is in use by another process (locked for writing)`);
    expect((await refusal(true)).message).toBe(`disk image ${image} is in use by another process (locked for writing)`);
  });

  it('lets two processes read one image, and keeps writers out while they do', async () => {
    const other = await child('tsvmm', image, 'ro');
    expect(other.answer).toBe('holding');
    await openHere(true);
    expect((await refusal(false)).message)
      .toBe(`disk image ${image} is in use by another process, which does not let others write to it (locked against writing)`);
  });

  it('makes another process refuse an image this one writes, or reads', async () => {
    await openHere(false);
    expect((await child('tsvmm', image, 'rw')).answer).toMatch(/^refused: disk image .* \(locked for writing\)$/);
    expect((await child('tsvmm', image, 'ro')).answer).toMatch(/^refused: disk image .* \(locked for writing\)$/);
  });

  it('refuses a writer while this process reads, but not a reader', async () => {
    await openHere(true);
    expect((await child('tsvmm', image, 'ro')).answer).toBe('holding');
    expect((await child('tsvmm', image, 'rw')).answer).toMatch(/\(locked against writing\)$/);
  });

  it('frees the image when the holder closes it, or is killed', async () => {
    const disk = await openHere(false);
    await disk.close();
    open.pop();
    const other = await child('tsvmm', image, 'rw');
    expect(other.answer).toBe('holding');
    await other.kill(); // SIGKILL: no cleanup ran, the kernel dropped the locks with the file
    await openHere(false);
  });

  it('refuses a second open for writing within one process (locks belong to the open file)', async () => {
    await openHere(false);
    expect((await refusal(false)).message).toMatch(/\(locked for writing\)$/);
  });
});

describe('disk image locks against whole-file locks (Cloud Hypervisor)', { timeout: 60_000 }, () => {
  it('refuses the image while another process holds an exclusive lock on it', async () => {
    expect((await child('whole-file', image, 'write')).answer).toBe('holding');
    expect((await refusal(true)).message).toMatch(/\(locked for writing\)$/);
    expect((await refusal(false)).message).toMatch(/\(locked for writing\)$/);
  });

  it('shares the image with a whole-file reader, but will not write under it', async () => {
    expect((await child('whole-file', image, 'read')).answer).toBe('holding');
    await openHere(true);
    expect((await refusal(false)).message).toMatch(/\(locked against writing\)$/);
  });

  it('keeps whole-file lockers out while writing, and lets readers in while reading', async () => {
    await openHere(false);
    expect((await child('whole-file', image, 'read')).answer).toBe('refused: the file is already locked');
    expect((await child('whole-file', image, 'write')).answer).toBe('refused: the file is already locked');
    await open.pop()!.close();
    await openHere(true);
    expect((await child('whole-file', image, 'read')).answer).toBe('holding');
    expect((await child('whole-file', image, 'write')).answer).toBe('refused: the file is already locked');
  });
});

// QEMU's tools take the same lock bytes as QEMU itself (block/file-posix.c).
// qemu-io, unlike a QEMU virtio-blk disk, lets others write while it has
// the image open, so only its own use of the image decides here.
const qemuIoInstalled = spawnSync('qemu-io', ['--version']).status === 0;
if (!qemuIoInstalled) {
  console.warn('disk-lock.test.ts: skipping the tests against QEMU\'s locks: qemu-io is not installed (Debian package qemu-utils)');
}

/** Runs one qemu-io command on the image; returns what it said on failure, or "" when it worked. */
function qemuIoOnce(readonly: boolean): string {
  const args = ['-f', 'raw', ...(readonly ? ['-r'] : []), '-c', 'read 0 512', image];
  const result = spawnSync('qemu-io', args, { encoding: 'utf8' });
  return result.status === 0 && !/Failed|lock/i.test(result.stderr) ? '' : `${result.stdout}${result.stderr}`.trim();
}

/** qemu-io keeping the image open (interactive, on stdin) until released. */
async function qemuIoHolding(readonly: boolean): Promise<{ release: () => Promise<void> }> {
  const qemu = spawn('qemu-io', ['-f', 'raw', ...(readonly ? ['-r'] : []), image]);
  children.push(qemu);
  const exited = new Promise<void>((done) => qemu.on('close', () => done()));
  let output = '';
  // A read that completes proves the image is open (and locked).
  qemu.stdin.write('read 0 512\n');
  await new Promise<void>((done, fail) => {
    const look = (chunk: Buffer) => {
      output += chunk;
      if (output.includes('read 512/512 bytes')) done();
    };
    qemu.stdout.on('data', look);
    qemu.stderr.on('data', look);
    qemu.on('close', () => fail(new Error(`qemu-io ended before opening the image:\n${output}`)));
  });
  return { release: async () => { qemu.stdin.end('quit\n'); await exited; } };
}

describe.skipIf(!qemuIoInstalled)('disk image locks against QEMU (qemu-io)', { timeout: 60_000 }, () => {
  it('refuses the image while QEMU has it open for writing', async () => {
    const qemu = await qemuIoHolding(false);
    expect((await refusal(true)).message).toMatch(/\(locked for writing\)$/);
    expect((await refusal(false)).message).toMatch(/\(locked for writing\)$/);
    await qemu.release();
    await openHere(false);
  });

  it('shares the image with a reading QEMU', async () => {
    const qemu = await qemuIoHolding(true);
    await openHere(true);
    await qemu.release();
  });

  it('makes QEMU refuse to write an image tsvmm writes or reads', async () => {
    await openHere(false);
    expect(qemuIoOnce(false)).toMatch(/Failed to get "write" lock/);
    await open.pop()!.close();
    await openHere(true);
    expect(qemuIoOnce(false)).toMatch(/Failed to get "write" lock/);
    expect(qemuIoOnce(true)).toBe('');
  });

  it('makes qemu-img convert, which wants a source nobody writes, refuse an image tsvmm writes', async () => {
    const convert = () => spawnSync('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', image, `${image}.copy`], { encoding: 'utf8' });
    await openHere(false);
    expect(convert().stderr).toMatch(/Failed to get shared "write" lock/);
    await open.pop()!.close();
    await openHere(true);
    const copy = convert();
    expect(copy.status, copy.stderr).toBe(0);
  });

  it('is invisible to qemu-img --force-share, which takes no locks', async () => {
    await openHere(false);
    const info = spawnSync('qemu-img', ['info', '--force-share', '-f', 'raw', image], { encoding: 'utf8' });
    expect(info.status, info.stderr).toBe(0);
  });
});
