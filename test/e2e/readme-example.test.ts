// The README's library example is a promise: this test takes the first
// TypeScript block of its "From TypeScript" section as it is written, points
// its `from 'tsvmm'` at the built library (dist/index.js), compiles it with
// TypeScript (it uses `await using`, which Node 20 does not parse), runs it
// with Node and checks what it prints, which the README states below the block.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { imagesBuilt, projectRoot } from '../helpers/guest-images.js';
import { readmeExample } from '../helpers/readme-example.js';
import { runProcess } from '../helpers/run-process.js';

const dir = mkdtempSync(join(projectRoot, 'node_modules', '.tsvmm-readme-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!imagesBuilt)('the README\'s library example', () => {
  it('runs against the built library and prints what the README says', async () => {
    const library = pathToFileURL(join(projectRoot, 'dist', 'index.js')).href;
    const source = readmeExample().replace("from 'tsvmm'", `from '${library}'`);
    expect(source).toContain(library);
    const script = join(dir, 'example.mjs');
    const compiled = ts.transpileModule(source, {
      compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
      reportDiagnostics: true,
    });
    expect(compiled.diagnostics ?? []).toEqual([]);
    writeFileSync(script, compiled.outputText);
    const result = await runProcess(process.execPath, [script], { timeoutMs: 180_000 });
    expect({ code: result.code, stderr: result.stderr }, result.stdout).toEqual({ code: 0, stderr: '' });
    expect(result.stdout).toBe('guest: tsoh eht morf olleh\nLinux 7\ntrue\nsignal true\n');
  });
});
