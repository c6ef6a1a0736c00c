import { describe, expect, it } from 'vitest';
import { formatBootTimes } from '../../../src/vm/boot-timer.js';

describe('the boot timer line', () => {
  it('gives both marks and where the start-up went, when every mark on the way was reached', () => {
    expect(formatBootTimes({ vmStart: 133.2, devicesReady: 147.4, bootImage: 177.1, vcpusStarting: 179, firstInstruction: 215.3, init: 1523 }))
      .toBe('boot timer: first instruction at 215 ms, init at 1523 ms (since tsvmm started; to the first instruction: '
        + 'Node and imports 133 ms, VM and devices 14 ms, kernel and initramfs 30 ms, vCPUs 2 ms, vCPU threads 36 ms)');
  });

  it('says which marks were not reached, without a breakdown it cannot make', () => {
    expect(formatBootTimes({ vmStart: 100, devicesReady: 110 }))
      .toBe('boot timer: first instruction not reached, init not reached (since tsvmm started)');
    expect(formatBootTimes({ vmStart: 100, devicesReady: 110, bootImage: 120, vcpusStarting: 121, firstInstruction: 150 }))
      .toMatch(/^boot timer: first instruction at 150 ms, init not reached \(since tsvmm started; to the first instruction: Node and imports 100 ms, /);
  });
});
