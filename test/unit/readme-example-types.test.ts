// The README's library example type-checks against the library's sources
// under the project's strict settings, so a renamed option or a changed
// signature breaks this test, not a reader's first try. (Running it needs a
// real guest: test/e2e/readme-example.test.ts.)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../helpers/guest-images.js';
import { readmeExample } from '../helpers/readme-example.js';

const dir = mkdtempSync(join(projectRoot, 'node_modules', '.tsvmm-readme-types-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the README\'s library example', () => {
  it('type-checks against src/index.ts', () => {
    const file = join(dir, 'example.ts');
    writeFileSync(file, readmeExample().replace("from 'tsvmm'", `from '${join(projectRoot, 'src', 'index.js')}'`));
    const program = ts.createProgram([file], {
      strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [join(projectRoot, 'node_modules', '@types')],
      target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
      lib: ['lib.es2023.d.ts', 'lib.esnext.disposable.d.ts'],
    });
    const problems = ts.getPreEmitDiagnostics(program)
      .map((d) => `${d.file ? `${d.file.fileName}: ` : ''}${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
    expect(problems).toEqual([]);
  }, 120_000);
});
