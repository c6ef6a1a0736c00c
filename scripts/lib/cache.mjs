// Build cache outside the clone, keyed by the hash of a build's inputs, so a
// fresh clone (or a second CI step) reuses kernels that took minutes to build.
//
// Several builders may want the same entry at once (two checkouts, a test and
// a benchmark): one lock file per entry makes the others wait for the first
// instead of building the same kernel twice and colliding when they rename
// their results into place.
import { createHash } from 'node:crypto';
import {
  existsSync, linkSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, unlinkSync, writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { step } from './progress.mjs';

export const cacheRoot = process.env.TSVMM_CACHE_DIR
  ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'tsvmm');

/** How often a waiting builder looks again whether the lock holder is done (it builds for minutes). */
const LOCK_POLL_MS = 1000;

/** A short, stable hash of strings and buffers, in order. */
export function hashOf(...parts) {
  const hash = createHash('sha256');
  for (const part of parts) {
    hash.update(String(part.length ?? 0));
    hash.update(part);
  }
  return hash.digest('hex').slice(0, 16);
}

/**
 * Returns the cache folder for `name-key`, building it with `build(tmpDir)`
 * when it is missing. The build writes into a temporary folder that is renamed
 * into place only when it succeeds, so a failed or interrupted build never
 * leaves something a later run would take as good. While one process builds
 * an entry, others asking for it wait for it and then use its result.
 *
 * `root` (default: the user's cache) and `pollMs` are there for tests.
 */
export async function cached(name, key, build, { root = cacheRoot, pollMs = LOCK_POLL_MS } = {}) {
  const dir = join(root, `${name}-${key}`);
  if (existsSync(dir)) return { dir, hit: true };
  mkdirSync(root, { recursive: true });
  const lock = `${dir}.lock`;
  if (!(await acquireLock(lock, dir, name, pollMs))) return { dir, hit: true };
  try {
    // The previous holder may have finished it between our look and our lock.
    if (existsSync(dir)) return { dir, hit: true };
    removeAbandonedBuilds(root, `${name}-${key}.partial-`);
    const tmp = `${dir}.partial-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp);
    try {
      await build(tmp);
      moveIntoPlace(tmp, dir);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    return { dir, hit: false };
  } finally {
    releaseLock(lock);
  }
}

/**
 * The rename is atomic; it fails only if another builder put the entry in
 * place meanwhile (one that broke a lock it took for stale at the same
 * moment as we did, or a version of this script without locks). Both built
 * from the same inputs, so theirs is as good as ours: keep theirs.
 */
function moveIntoPlace(tmp, dir) {
  try {
    renameSync(tmp, dir);
  } catch (error) {
    if (!((error.code === 'ENOTEMPTY' || error.code === 'EEXIST') && existsSync(dir))) throw error;
  }
}

/** This process, as written into a lock file: its pid and start time (pids are reused). */
function holderLine(pid) {
  return `${pid} ${processStartTime(pid) ?? '?'}\n`;
}

/**
 * Takes the lock, waiting while a live process holds it; returns false when
 * `dir` appeared while waiting (the holder built it: nothing left to do).
 */
async function acquireLock(lock, dir, name, pollMs) {
  const mine = holderLine(process.pid);
  const draft = `${lock}.new-${process.pid}`;
  let announced = false;
  for (;;) {
    if (existsSync(dir)) return false;
    // link() publishes the lock file with its content, atomically, and fails
    // if it exists: a reader never sees a half-written lock.
    writeFileSync(draft, mine);
    try {
      linkSync(draft, lock);
      return true;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
    } finally {
      rmSync(draft, { force: true });
    }
    const holder = readHolder(lock);
    if (holder === undefined) continue; // released between our two looks
    if (!holderAlive(holder)) {
      breakStaleLock(lock, holder.line);
      continue;
    }
    if (!announced) {
      step(`waiting for process ${holder.pid}, which is building the same ${name} (lock: ${lock})`);
      announced = true;
    }
    await sleep(pollMs);
  }
}

function readHolder(lock) {
  let line;
  try {
    line = readFileSync(lock, 'utf8');
  } catch (error) {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  }
  const [pid, startTime] = line.trim().split(' ');
  return { line, pid: Number(pid), startTime };
}

/** Alive, and the same process that took the lock, not a later one that got its pid. */
function holderAlive({ pid, startTime }) {
  if (!Number.isInteger(pid) || pid <= 0 || !processAlive(pid)) return false;
  const now = processStartTime(pid);
  return startTime === '?' || now === undefined || now === startTime;
}

/**
 * Removes a lock whose holder died (killed before it could clean up). Only
 * the lock file we judged is removed: it is first renamed aside, and put
 * back if it turns out to be a new one another waiter took meanwhile.
 */
function breakStaleLock(lock, staleLine) {
  const aside = `${lock}.stale-${process.pid}`;
  try {
    renameSync(lock, aside);
  } catch (error) {
    if (error.code === 'ENOENT') return; // another waiter broke it first
    throw error;
  }
  if (readFileSync(aside, 'utf8') === staleLine) {
    unlinkSync(aside);
    return;
  }
  // We moved a live holder's fresh lock: put it back unless yet another
  // appeared; if one did, two builders may run, and moveIntoPlace() keeps
  // the result of whichever finishes first.
  try {
    linkSync(aside, lock);
  } catch (error) {
    if (error.code !== 'EEXIST') throw error;
  }
  unlinkSync(aside);
}

/** Removes our lock; never someone else's (if ours was broken as stale, which should not happen). */
function releaseLock(lock) {
  const holder = readHolder(lock);
  if (holder !== undefined && holder.line === holderLine(process.pid)) rmSync(lock, { force: true });
}

/** Deletes partial builds whose process is gone (killed before it could clean up). */
function removeAbandonedBuilds(root, prefix) {
  for (const entry of readdirSync(root)) {
    if (!entry.startsWith(prefix)) continue;
    const pid = Number(entry.slice(prefix.length));
    if (pid !== process.pid && !processAlive(pid)) rmSync(join(root, entry), { recursive: true, force: true });
  }
}

function processAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); undefined where /proc says nothing. */
function processStartTime(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count after its last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}
