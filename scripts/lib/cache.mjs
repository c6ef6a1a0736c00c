// Build cache outside the clone, keyed by the hash of a build's inputs, so a
// fresh clone (or a second CI step) reuses kernels that took minutes to build.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const cacheRoot = process.env.TSVMM_CACHE_DIR
  ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'tsvmm');

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
 * leaves something a later run would take as good.
 */
export async function cached(name, key, build) {
  const dir = join(cacheRoot, `${name}-${key}`);
  if (existsSync(dir)) return { dir, hit: true };
  mkdirSync(cacheRoot, { recursive: true });
  removeAbandonedBuilds(`${name}-${key}.partial-`);
  const tmp = `${dir}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    await build(tmp);
    renameSync(tmp, dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return { dir, hit: false };
}

/** Deletes partial builds whose process is gone (killed before it could clean up). */
function removeAbandonedBuilds(prefix) {
  for (const entry of readdirSync(cacheRoot)) {
    if (!entry.startsWith(prefix)) continue;
    const pid = Number(entry.slice(prefix.length));
    if (pid !== process.pid && !processAlive(pid)) rmSync(join(cacheRoot, entry), { recursive: true, force: true });
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
