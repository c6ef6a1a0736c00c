import { describe, expect, it } from 'vitest';
import { debugEnabled, GuestLog, LOG_LINES_PER_WINDOW, LOG_WINDOW_MS } from '../../src/log.js';

function recording(enabled = true) {
  const lines: string[] = [];
  const clock = { now: 0 };
  const log = new GuestLog({ enabled, write: (line) => lines.push(line), now: () => clock.now });
  return { lines, clock, log };
}

describe('GuestLog', () => {
  it('is on when TSVMM_DEBUG is set and not "0" (as the CLI reads it)', () => {
    expect(debugEnabled({})).toBe(false);
    expect(debugEnabled({ TSVMM_DEBUG: '0' })).toBe(false);
    expect(debugEnabled({ TSVMM_DEBUG: '1' })).toBe(true);
  });

  it('rate-limits each kind on its own: a flood of one kind does not hide another', () => {
    const { lines, log } = recording();
    for (let i = 0; i < 1000; i++) log.report('flood', `mistake ${i}`);
    log.report('rare', 'something else');
    expect(lines.length).toBe(LOG_LINES_PER_WINDOW + 1);
    expect(lines.at(-1)).toBe('tsvmm: rare: something else\n');
    expect(log.counts()).toEqual(new Map([['flood', 1000], ['rare', 1]]));
  });

  it('reports what a window suppressed when the next one starts, or on flush', () => {
    const { lines, clock, log } = recording();
    for (let i = 0; i < LOG_LINES_PER_WINDOW + 3; i++) log.report('kind', 'x');
    clock.now += LOG_WINDOW_MS;
    log.report('kind', 'y');
    expect(lines.slice(-2)).toEqual(['tsvmm: kind: 3 more suppressed\n', 'tsvmm: kind: y\n']);
    log.flush();
    expect(lines.length).toBe(LOG_LINES_PER_WINDOW + 2); // nothing pending: flush prints nothing
  });

  it('prints nothing when disabled, but counts', () => {
    const { lines, log } = recording(false);
    log.report('kind', 'x');
    log.flush();
    expect(lines).toEqual([]);
    expect(log.count('kind')).toBe(1);
    expect(log.count('other')).toBe(0);
  });
});
