// The library's API reference (`npm run docs`, typedoc.json) is generated
// from the TSDoc of every export of src/index.ts. typedoc treats an export
// without documentation, a broken {@link} or a type the reference cannot
// show as a warning, and warnings as errors: this test keeps it that way.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../helpers/guest-images.js';

const out = mkdtempSync(join(projectRoot, 'node_modules', '.tsvmm-api-docs-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('the API reference', () => {
  it('builds with every export documented (typedoc: 0 errors, 0 warnings)', () => {
    const typedoc = join(projectRoot, 'node_modules', '.bin', 'typedoc');
    const result = spawnSync(typedoc, ['--out', out, '--logLevel', 'Warn'], { cwd: projectRoot, encoding: 'utf8' });
    const said = `${result.stdout}${result.stderr}`.replace(/\x1b\[[0-9;]*m/g, '');
    expect(said.split('\n').filter((line) => /\[(warning|error)\]/.test(line))).toEqual([]);
    expect(result.status).toBe(0);
  }, 180_000);
});
