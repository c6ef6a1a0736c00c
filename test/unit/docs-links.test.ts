// The documents a reader learns the code from must point at code that
// exists. For README.md and every docs/*.md, this checks that
//   - each relative link names a file that exists (and, for a link into a
//     Markdown file, that the #anchor names one of its headings), and
//   - each `name()` written right after a link to a .ts file (for example
//     "[src/vm.ts](../src/vm.ts) `Vm.start()`", or several separated by
//     commas or "and") is defined in that file: every dotted part of the
//     name must appear there as a function, class, method or property name.
// Links inside fenced code blocks are not links and are skipped.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const projectDir = resolve(dirname(new URL(import.meta.url).pathname), '../..');

/** README.md and docs/*.md, as paths relative to the project. */
function documents(): string[] {
  const docsDir = join(projectDir, 'docs');
  const docs = existsSync(docsDir) ? readdirSync(docsDir).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`) : [];
  return ['README.md', ...docs.sort()];
}

/** The text without fenced code blocks (``` ... ```), lines kept so positions stay meaningful. */
function withoutCodeBlocks(markdown: string): string {
  let inFence = false;
  return markdown.split('\n').map((line) => {
    if (/^\s*```/.test(line)) {
      inFence = !inFence;
      return '';
    }
    return inFence ? '' : line;
  }).join('\n');
}

/** GitHub's heading anchors, simplified: lowercase, punctuation dropped, spaces to hyphens. */
function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  for (const line of withoutCodeBlocks(markdown).split('\n')) {
    const heading = /^#{1,6}\s+(.*)$/.exec(line);
    if (heading) anchors.add(heading[1]!.trim().toLowerCase().replace(/[^a-z0-9 _-]/g, '').replace(/ /g, '-'));
  }
  return anchors;
}

/** True when `name` is declared in `source`: a function, class, const, method, getter or property. */
function declares(source: string, name: string): boolean {
  const n = name.replace(/[$]/g, '\\$');
  const declaration = new RegExp(
    `\\b(?:function\\*?|class|interface|type|const|let|var|get|set)\\s+${n}\\b` + // function foo, class Foo, get foo
    `|^\\s*(?:(?:export|public|private|protected|static|async|readonly|override)\\s+)*${n}\\s*[(<=:]`, // foo(...) {, foo = ...
    'm');
  return declaration.test(source);
}

/** A problem found in `file` (relative to the project), as one readable line each. */
export function checkDocument(file: string, markdown: string, readFile: (path: string) => string | undefined): string[] {
  const problems: string[] = [];
  const text = withoutCodeBlocks(markdown);
  const link = /\[[^\]\n]*\]\(([^)\s]+)\)/g;
  for (const match of text.matchAll(link)) {
    const target = match[1]!;
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:, ...
    const [pathPart, anchor] = target.split('#', 2) as [string, string | undefined];
    const path = pathPart === '' ? file : join(dirname(file), pathPart);
    const content = readFile(path);
    if (content === undefined) {
      problems.push(`${file}: link to ${target}: ${path} does not exist`);
      continue;
    }
    if (anchor !== undefined && path.endsWith('.md') && !headingAnchors(content).has(anchor)) {
      problems.push(`${file}: link to ${target}: ${path} has no heading #${anchor}`);
    }
    if (!path.endsWith('.ts')) continue;
    // `a()`, `b()` and `c()` right after the link.
    const after = text.slice(match.index! + match[0].length);
    const names = /^\s*((?:`[A-Za-z_$][\w$.]*\(\)`(?:\s*,\s*|\s+and\s+)?)+)/.exec(after);
    if (!names) continue;
    for (const call of names[1]!.matchAll(/`([A-Za-z_$][\w$.]*)\(\)`/g)) {
      const missing = call[1]!.split('.').filter((part) => !declares(content, part));
      if (missing.length > 0) problems.push(`${file}: \`${call[1]}()\` is not defined in ${path} (no ${missing.join(', ')})`);
    }
  }
  return problems;
}

/** Reads a project file, or undefined when it does not exist (or is a directory). */
function readProjectFile(path: string): string | undefined {
  const absolute = join(projectDir, path);
  try {
    return readFileSync(absolute, 'utf8');
  } catch {
    return existsSync(absolute) ? '' : undefined; // a directory is a fine link target
  }
}

describe('links in README.md and docs/', () => {
  it('finds documents to check', () => {
    expect(documents()).toContain('README.md');
    expect(documents().length).toBeGreaterThan(1);
  });

  it.each(documents())('%s: every relative link and every `name()` after a .ts link exists', (file) => {
    expect(checkDocument(file, readFileSync(join(projectDir, file), 'utf8'), readProjectFile)).toEqual([]);
  });
});

describe('the checker itself', () => {
  const files: Record<string, string> = {
    'src/a.ts': 'export class Vm {\n  static async start(config) {}\n  get exited() {}\n}\nexport function buildCmdline() {}\n' +
      'const helper = () => 1;\n// mentions ghost() in a comment only\n',
    'docs/other.md': '# Other page\n\n## The data path\n',
  };
  const read = (path: string) => files[path];
  const check = (markdown: string) => checkDocument('docs/doc.md', markdown, read);

  it('accepts links to existing files, anchors and defined names', () => {
    expect(check('[a](../src/a.ts) `Vm.start()`, `buildCmdline()` and `helper()`; [o](other.md#the-data-path) [w](https://x.org/y)')).toEqual([]);
  });

  it('reports a link to a missing file', () => {
    expect(check('see [gone](../src/gone.ts)')).toEqual(['docs/doc.md: link to ../src/gone.ts: src/gone.ts does not exist']);
  });

  it('reports a missing heading', () => {
    expect(check('[o](other.md#nowhere)')).toEqual(['docs/doc.md: link to other.md#nowhere: docs/other.md has no heading #nowhere']);
  });

  it('reports a name the linked file does not define, even if a comment mentions it', () => {
    expect(check('[a](../src/a.ts) `Vm.stop()` and `ghost()`')).toEqual([
      'docs/doc.md: `Vm.stop()` is not defined in src/a.ts (no stop)',
      'docs/doc.md: `ghost()` is not defined in src/a.ts (no ghost)',
    ]);
  });

  it('ignores links inside fenced code blocks', () => {
    expect(check('```\n[gone](../src/gone.ts)\n```\n')).toEqual([]);
  });
});
