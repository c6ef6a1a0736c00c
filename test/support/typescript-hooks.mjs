// Node.js module hooks for the worker threads that the sources start under
// test (each vCPU's, src/vcpu/vcpu-thread.ts): vitest runs the TypeScript
// sources through its own transform, but a worker is a fresh Node thread it
// does not reach, and Node 20 cannot strip types.
// register-typescript-hooks.mjs installs them in every test process (see
// test/vitest.config.ts), and workers inherit them. Compiled tsvmm (dist/)
// never loads this file.

import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

// The sources name a module by its compiled name, `./x.js`, as tsc wants; a
// `.js` that does not exist is the `.ts` next to it. This holds for a
// worker's own module too (`new Worker(new URL('./vcpu-worker.js', ...))`),
// so src/ needs to know nothing of tests. A module missing either way is
// reported under the name it was asked for.
export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !specifier.endsWith('.js')) throw error;
    return nextResolve(specifier.replace(/\.js$/, '.ts'), context).catch(() => { throw error; });
  }
}

// Types are dropped, nothing is type-checked (`npm run typecheck` does that).
export async function load(url, context, nextLoad) {
  if (!url.endsWith('.ts')) return nextLoad(url, context);
  const path = fileURLToPath(url);
  const { outputText } = ts.transpileModule(await readFile(path, 'utf8'), {
    fileName: path,
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, sourceMap: false },
  });
  return { format: 'module', source: outputText, shortCircuit: true };
}
