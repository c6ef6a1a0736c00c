// Starting a worker whose code is one of our own modules, both when tsvmm
// runs compiled (dist/vcpu/vcpu-worker.js) and when tests run the TypeScript
// sources directly (vitest transforms src/**/*.ts on the fly, but a worker
// is a fresh Node.js thread that knows nothing of vitest, and Node 20 cannot
// strip types by itself).
//
// So: the worker module sits next to the calling module with the same
// extension. When that is ".ts", the worker is started with a tiny module
// loader (ts-worker-hooks.mjs) that compiles .ts files with the `typescript`
// package (a devDependency) as they are imported. Compiled code never takes
// that path.

import { Worker, WorkerOptions } from 'node:worker_threads';

/** URL of module `name` (without extension) next to `callerUrl` (pass import.meta.url). */
export function siblingModule(callerUrl: string, name: string): URL {
  const extension = callerUrl.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./${name}${extension}`, callerUrl);
}

export function startModuleWorker(moduleUrl: URL, options: WorkerOptions = {}): Worker {
  if (!moduleUrl.pathname.endsWith('.ts')) return new Worker(moduleUrl, options);
  const hooks = new URL('./ts-worker-hooks.mjs', import.meta.url).href;
  const register = `import { register } from 'node:module'; register(${JSON.stringify(hooks)});`;
  return new Worker(moduleUrl, {
    ...options,
    execArgv: [...(options.execArgv ?? []), '--import', `data:text/javascript,${encodeURIComponent(register)}`],
  });
}
