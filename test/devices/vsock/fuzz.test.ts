// The vsock fuzzer (guest-fuzzer.ts) on a fixed budget of seeds: a few
// seconds in `npm test`. `npm run fuzz` runs this same file with more seeds
// and steps (scripts/fuzz-vsock.mjs sets TSVMM_FUZZ_*).
import { describe, expect, it } from 'vitest';
import { fuzzVsock, memoryBound } from './guest-fuzzer.js';

function envNumber(name: string, fallback: number): number {
  const value = process.env[name];
  return value === undefined || value === '' ? fallback : Number(value);
}

const FIRST_SEED = envNumber('TSVMM_FUZZ_FIRST_SEED', 1);
const SEEDS = envNumber('TSVMM_FUZZ_SEEDS', 8);
const STEPS = envNumber('TSVMM_FUZZ_STEPS', 400);
const seeds = Array.from({ length: SEEDS }, (_, i) => (FIRST_SEED + i) >>> 0);

describe('vsock fuzzer', () => {
  it.each(seeds)('seed %i holds every invariant', async (seed) => {
    const result = await fuzzVsock(seed, STEPS);
    if (process.env.TSVMM_FUZZ_VERBOSE) console.log(JSON.stringify(result));
    expect(result.steps).toBe(STEPS);
    expect(result.maxBufferedBytes).toBeLessThanOrEqual(memoryBound());
  }, 60_000 + STEPS * 50);
});
