// Finding the processes a test started, even after they were reparented:
// each test run marks tsvmm's environment, which its children inherit.
import { readFileSync, readdirSync } from 'node:fs';
import { startTsvmm, type RunningTsvmm } from './tsvmm.js';

/** Processes whose environment holds `marker`: tsvmm and anything it started, even if reparented. */
export function processesMarkedWith(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').includes(marker)) pids.push(Number(entry));
    } catch {
      // Gone already, or not ours to read.
    }
  }
  return pids;
}

/** Starts tsvmm with `marker` in its environment, which its children inherit. */
export function startMarked(marker: string, args: string[]): RunningTsvmm {
  const [name, value] = marker.split('=') as [string, string];
  process.env[name] = value;
  try {
    return startTsvmm(args);
  } finally {
    delete process.env[name];
  }
}
