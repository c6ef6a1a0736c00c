// The code's shape, checked on every `npm test` (also `npm run lint`):
//   knip              no unused file, export or dependency (knip.json);
//   dependency-cruiser the layering of src/: no import from a lower layer to
//                      a higher one, no run-time import cycle
//                      (.dependency-cruiser.cjs lists the layers).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../helpers/guest-images.js';

function run(tool: string, args: string[]): { status: number | null; output: string } {
  const result = spawnSync(join(projectRoot, 'node_modules', '.bin', tool), args, { cwd: projectRoot, encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}`.replace(/\x1b\[[0-9;]*m/g, '') };
}

describe('the code\'s shape', () => {
  it('knip finds no unused file, export or dependency', () => {
    const { status, output } = run('knip', ['--no-progress']);
    expect(output.trim()).toBe('');
    expect(status).toBe(0);
  }, 180_000);

  it('no layer of src/ imports from a layer above it, and no module cycle', () => {
    const { status, output } = run('depcruise', ['src', '--config', '.dependency-cruiser.cjs']);
    expect(output).toMatch(/no dependency violations found/);
    expect(status).toBe(0);
  }, 180_000);
});
