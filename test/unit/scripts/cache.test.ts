// The image cache (scripts/lib/cache.mjs) with several builders at once: two
// checkouts, or a test and a benchmark, building the same kernel used to
// fail with "ENOTEMPTY: rename ...partial-N -> ...". Real processes race
// here over a temporary cache folder, each "building" a tiny fake entry
// whose build step waits for the test's word, so the overlap is certain
// without any timing assumption.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cached } from '../../../scripts/lib/cache.mjs';

const cacheModule = new URL('../../../scripts/lib/cache.mjs', import.meta.url).href;
const scratch = mkdtempSync(join(tmpdir(), 'tsvmm-cache-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Above the kernel's largest pid_max (2^22): no process can have it. */
const DEAD_PID = 4_194_305;

/**
 * A builder process: asks the cache for `fake-k1`; its build writes its
 * label into the entry, says "building <label>" and waits for a line on
 * stdin: "go" finishes the build, anything else fails it. It prints the
 * cache's answer as "result <json>".
 */
const BUILDER = `
import { createInterface } from 'node:readline';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
const { cached } = await import(${JSON.stringify(cacheModule)});
const [root, label] = process.argv.slice(2);
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const result = await cached('fake', 'k1', async (tmp) => {
  writeFileSync(join(tmp, 'built-by'), label);
  console.log('building ' + label);
  const word = (await lines.next()).value;
  if (word !== 'go') throw new Error('build failed as asked');
}, { root, pollMs: 20 });
console.log('result ' + JSON.stringify(result));
process.exit(0);
`;
const builderScript = join(scratch, 'builder.mjs');
writeFileSync(builderScript, BUILDER);

interface Builder {
  /** Resolves with the first line matching one of the patterns (rejects if the process ends first). */
  waitFor(...patterns: RegExp[]): Promise<string>;
  say(line: string): void;
  exit(): Promise<number | null>;
  readonly child: ChildProcessWithoutNullStreams;
}

const running: ChildProcessWithoutNullStreams[] = [];

function startBuilder(root: string, label: string): Builder {
  const child = spawn(process.execPath, [builderScript, root, label]);
  running.push(child);
  let output = '';
  let ended = false;
  const listeners = new Set<() => void>();
  const notify = () => { for (const listener of listeners) listener(); };
  child.stdout.on('data', (chunk) => { output += chunk; notify(); });
  child.stderr.on('data', (chunk) => { output += chunk; notify(); });
  const exited = new Promise<number | null>((done) => child.on('close', (code) => { ended = true; notify(); done(code); }));
  return {
    child,
    say: (line) => child.stdin.write(`${line}\n`),
    exit: () => exited,
    waitFor: (...patterns) => new Promise((done, fail) => {
      const check = () => {
        const line = output.split('\n').find((l) => patterns.some((p) => p.test(l)));
        if (line !== undefined) {
          listeners.delete(check);
          done(line);
        } else if (ended) {
          listeners.delete(check);
          fail(new Error(`builder ${label} ended without printing ${patterns.join(' or ')}; it printed:\n${output}`));
        }
      };
      listeners.add(check);
      check();
    }),
  };
}

const resultOf = (line: string) => JSON.parse(line.slice('result '.length)) as { dir: string; hit: boolean };

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(scratch, 'cache-'));
});
afterEach(() => {
  for (const child of running.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

// Generous: each case starts Node processes, which is slow on a loaded machine.
describe('the image cache with concurrent builders', { timeout: 60_000 }, () => {
  it('makes a second builder wait for the first and use its result, building once', async () => {
    const first = startBuilder(root, 'first');
    await first.waitFor(/^building first/);
    const second = startBuilder(root, 'second');
    // Without a lock the second one starts building too (and its rename fails later).
    expect(await second.waitFor(/waiting for process/, /^building second/)).toMatch(/waiting for process \d+/);

    first.say('go');
    const [firstResult, secondResult] = await Promise.all([first.waitFor(/^result /), second.waitFor(/^result /)]);
    expect([await first.exit(), await second.exit()]).toEqual([0, 0]);
    expect(resultOf(firstResult)).toEqual({ dir: join(root, 'fake-k1'), hit: false });
    expect(resultOf(secondResult)).toEqual({ dir: join(root, 'fake-k1'), hit: true });
    expect(readFileSync(join(root, 'fake-k1', 'built-by'), 'utf8')).toBe('first');
    expect(readdirSync(root)).toEqual(['fake-k1']); // no lock, partial or draft left behind
  });

  it('lets a waiting builder build when the first one fails', async () => {
    const first = startBuilder(root, 'first');
    await first.waitFor(/^building first/);
    const second = startBuilder(root, 'second');
    await second.waitFor(/waiting for process/);

    first.say('fail');
    expect(await first.exit()).not.toBe(0);
    await second.waitFor(/^building second/);
    second.say('go');
    expect(resultOf(await second.waitFor(/^result /))).toEqual({ dir: join(root, 'fake-k1'), hit: false });
    expect(readFileSync(join(root, 'fake-k1', 'built-by'), 'utf8')).toBe('second');
    expect(readdirSync(root)).toEqual(['fake-k1']);
  });

  it('takes over the lock and removes the partial build of a builder that was killed', async () => {
    writeFileSync(join(root, 'fake-k1.lock'), `${DEAD_PID} 12345\n`);
    mkdirSync(join(root, `fake-k1.partial-${DEAD_PID}`));
    const result = await cached('fake', 'k1', async (tmp: string) => writeFileSync(join(tmp, 'built-by'), 'me'), { root, pollMs: 20 });
    expect(result).toEqual({ dir: join(root, 'fake-k1'), hit: false });
    expect(readdirSync(root)).toEqual(['fake-k1']);
  });

  it('takes a lock whose pid now belongs to another process (started later) for stale', async () => {
    // This process is alive, but did not start at "tick 1": the lock's owner had this pid before.
    writeFileSync(join(root, 'fake-k1.lock'), `${process.pid} 1\n`);
    const result = await cached('fake', 'k1', async (tmp: string) => writeFileSync(join(tmp, 'built-by'), 'me'), { root, pollMs: 20 });
    expect(result.hit).toBe(false);
    expect(readdirSync(root)).toEqual(['fake-k1']);
  });

  it('keeps the entry a lockless builder put in place while it was building', async () => {
    const result = await cached('fake', 'k1', async (tmp: string) => {
      writeFileSync(join(tmp, 'built-by'), 'me');
      mkdirSync(join(root, 'fake-k1'));
      writeFileSync(join(root, 'fake-k1', 'built-by'), 'other');
    }, { root, pollMs: 20 });
    expect(result.dir).toBe(join(root, 'fake-k1'));
    expect(readFileSync(join(root, 'fake-k1', 'built-by'), 'utf8')).toBe('other');
    expect(existsSync(join(root, `fake-k1.partial-${process.pid}`))).toBe(false);
    expect(readdirSync(root)).toEqual(['fake-k1']);
  });
});
