import { describe, expect, it } from 'vitest';
import { siblingModule, startModuleWorker } from '../../../src/vcpu/worker-loader.js';

describe('worker loader', () => {
  it('keeps the caller module extension for siblings', () => {
    expect(siblingModule('file:///app/dist/vcpu/vcpu-thread.js', 'vcpu-worker').href)
      .toBe('file:///app/dist/vcpu/vcpu-worker.js');
    expect(siblingModule('file:///app/src/vcpu/vcpu-thread.ts', 'vcpu-worker').href)
      .toBe('file:///app/src/vcpu/vcpu-worker.ts');
  });

  it('runs a TypeScript worker module from the sources', async () => {
    // write-ring.ts has type annotations and imports './channel.js' (which is channel.ts).
    const url = new URL('../../../src/vcpu/write-ring.ts', import.meta.url);
    const worker = startModuleWorker(url);
    const code = await new Promise<number>((resolve, reject) => {
      worker.on('error', reject);
      worker.on('exit', resolve);
    });
    expect(code).toBe(0);
  });
});
