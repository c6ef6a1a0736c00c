// The loader that test/vitest.config.ts gives every test process, so that
// the worker threads the sources start run TypeScript: the kvm and e2e
// suites' vCPUs depend on it.
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';

/** How a worker running `moduleUrl` ended: its exit code, or the error it died of. */
function runWorker(moduleUrl: URL): Promise<number | Error> {
  return new Promise((resolve) => {
    const worker = new Worker(moduleUrl);
    worker.on('error', resolve);
    worker.on('exit', resolve);
  });
}

describe('TypeScript in worker threads under test', () => {
  it('runs a module of the sources started by its compiled name', async () => {
    // write-ring.ts has type annotations and imports './channel.js' (which is channel.ts).
    expect(await runWorker(new URL('../../../src/vcpu/write-ring.js', import.meta.url))).toBe(0);
  });

  it('reports a module missing from the sources under the name it was asked for', async () => {
    const ended = await runWorker(new URL('./no-such-module.js', import.meta.url));
    expect(ended).toBeInstanceOf(Error);
    expect((ended as Error).message).toMatch(/Cannot find module .*\/no-such-module\.js'/);
  });
});
