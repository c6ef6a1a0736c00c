// Benchmarks reuse the simulated guest drivers of test/helpers/, which are
// TypeScript importing src/. Node 20 cannot run TypeScript, so they are
// transpiled into a folder with their imports of src/ pointed at dist/: the
// benchmark then measures the same compiled JavaScript the CLI runs.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Transpiles test/helpers/<name>.ts for each name into `dir`; returns each module's URL by name. */
export function compileTestHelpers(names, dir) {
  const dist = pathToFileURL(join(root, 'dist')).href;
  const urls = {};
  for (const name of names) {
    const file = join(root, 'test', 'helpers', `${name}.ts`);
    const { outputText } = ts.transpileModule(readFileSync(file, 'utf8'), {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    });
    const js = outputText.replace(/(['"])\.\.\/\.\.\/src\//g, `$1${dist}/`);
    if (/['"]\.\.\//.test(js)) throw new Error(`test/helpers/${name}.ts imports something outside src/ and test/helpers`);
    writeFileSync(join(dir, `${name}.js`), js);
    urls[name] = pathToFileURL(join(dir, `${name}.js`)).href;
  }
  return urls;
}
