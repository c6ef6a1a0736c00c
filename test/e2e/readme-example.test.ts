// The README's library example is a promise: this test takes the first
// TypeScript block of its "From TypeScript" section as it is written, points
// its `from 'tsvmm'` at the built library (dist/index.js), runs it with Node
// and checks what it prints, which the README states below the block.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { imagesBuilt, projectRoot } from '../helpers/guest-images.js';
import { runProcess } from '../helpers/run-process.js';

const dir = mkdtempSync(join(projectRoot, 'node_modules', '.tsvmm-readme-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The first ```ts block after the "### From TypeScript" heading. */
function readmeExample(): string {
  const readme = readFileSync(join(projectRoot, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### From TypeScript'));
  const block = /```ts\n([\s\S]*?)```/.exec(section);
  if (!block) throw new Error('README: no ```ts block under "### From TypeScript"');
  return block[1]!;
}

describe.skipIf(!imagesBuilt)('the README\'s library example', () => {
  it('runs against the built library and prints what the README says', async () => {
    const library = pathToFileURL(join(projectRoot, 'dist', 'index.js')).href;
    const source = readmeExample().replace("from 'tsvmm'", `from '${library}'`);
    expect(source).toContain(library);
    const script = join(dir, 'example.mjs');
    writeFileSync(script, source);
    const result = await runProcess(process.execPath, [script], { timeoutMs: 180_000 });
    expect({ code: result.code, stderr: result.stderr }, result.stdout).toEqual({ code: 0, stderr: '' });
    expect(result.stdout).toBe('guest: tsoh eht morf olleh\ntrue\nsignal\n');
  });
});
