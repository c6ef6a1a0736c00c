#!/usr/bin/env node
// `npm run fuzz`: the vsock fuzzer (test/devices/vsock/guest-fuzzer.ts) in
// its long mode. It runs the same test file as `npm test`, with more seeds
// and steps, and stops by itself once every seed has run (or at the first
// failing seed, whose number and replay command it prints).
//
//   npm run fuzz [-- --seeds N] [--steps N] [--seed FIRST]
//
// --seeds: how many seeds (default 200); --steps: steps per seed (default
// 2000); --seed: the first seed (default: one derived from the clock,
// printed, so a run can be repeated). Seeds run one after another from there.
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseFlags } from './lib/options.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const USAGE = `usage: npm run fuzz [-- --seeds N] [--steps N] [--seed FIRST]

Runs the vsock fuzzer's long mode, one seed after another.

  --seeds N      how many seeds (default 200)
  --steps N      steps per seed (default 2000)
  --seed FIRST   the first seed (default: derived from the clock, printed)`;
const { seeds, steps, seed: firstSeed } = parseFlags(process.argv.slice(2),
  { seeds: 200, steps: 2000, seed: Date.now() % 1_000_000_000 }, USAGE);

for (const [name, value] of [['--seeds', seeds], ['--steps', steps], ['--seed', firstSeed]]) {
  if (!Number.isInteger(value) || value < 0 || (name !== '--seed' && value === 0)) {
    console.error(`fuzz: ${name} needs a ${name === '--seed' ? 'non-negative' : 'positive'} integer`);
    process.exit(2);
  }
}

console.log(`==> vsock fuzzer: seeds ${firstSeed}..${firstSeed + seeds - 1}, ${steps} steps each`);
const result = spawnSync('npx', [
  'vitest', 'run', '--config', 'test/vitest.config.ts', '--bail', '1', 'test/devices/vsock/fuzz.test.ts',
], {
  cwd: root,
  stdio: 'inherit',
  env: {
    ...process.env,
    TSVMM_FUZZ_FIRST_SEED: String(firstSeed),
    TSVMM_FUZZ_SEEDS: String(seeds),
    TSVMM_FUZZ_STEPS: String(steps),
  },
});
if (result.error) throw result.error;
console.log(result.status === 0
  ? `==> vsock fuzzer: ${seeds} seeds passed`
  : `==> vsock fuzzer failed; repeat the whole run with: npm run fuzz -- --seed ${firstSeed} --seeds ${seeds} --steps ${steps}`);
process.exit(result.status ?? 1);
