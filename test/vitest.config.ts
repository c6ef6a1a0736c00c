// Three suites, run by scripts/test.mjs:
//   unit  pure logic and devices driven by a simulated guest driver (anywhere)
//   kvm   tiny hand-made guests on this machine's /dev/kvm (any KVM, PVM too)
//   sandbox  the nested sandbox itself (boots it from the host)
//   e2e   real Linux guests; runs where KVM can boot Linux (inside the sandbox here)
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    // Every project extends this: the worker threads the sources start (vCPUs)
    // run TypeScript through this loader, which reaches them because a Worker
    // inherits its test process's execArgv.
    execArgv: ['--import', new URL('./support/register-typescript-hooks.mjs', import.meta.url).href],
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts', 'test/devices/**/*.test.ts'] } },
      { extends: true, test: { name: 'kvm', include: ['test/kvm/**/*.test.ts'], testTimeout: 30_000, fileParallelism: false } },
      { extends: true, test: { name: 'sandbox', include: ['test/sandbox/**/*.test.ts'], testTimeout: 300_000, fileParallelism: false } },
      { extends: true, test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'], testTimeout: 300_000, hookTimeout: 300_000, fileParallelism: false } },
    ],
  },
});
