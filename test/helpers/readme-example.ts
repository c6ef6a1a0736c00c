// The README's library example, as the tests that keep it honest read it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from './guest-images.js';

/** The first ```ts block after the "### From TypeScript" heading. */
export function readmeExample(): string {
  const readme = readFileSync(join(projectRoot, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### From TypeScript'));
  const block = /```ts\n([\s\S]*?)```/.exec(section);
  if (!block) throw new Error('README: no ```ts block under "### From TypeScript"');
  return block[1]!;
}
