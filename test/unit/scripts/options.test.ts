// The benchmark scripts' flag parser (scripts/lib/options.mjs): what a user
// types after `npm run bench:... --`.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseFlags } from '../../../scripts/lib/options.mjs';

const OPTIONS_MODULE = fileURLToPath(new URL('../../../scripts/lib/options.mjs', import.meta.url));
const DEFAULTS = { runs: 3, name: 'a', 'no-guest': false };

/** Runs parseFlags in a child process (it exits on a mistake): its status and output. */
function parseInChild(argv: string[]) {
  const script = `import { parseFlags } from ${JSON.stringify(OPTIONS_MODULE)};
    console.log(JSON.stringify(parseFlags(${JSON.stringify(argv)}, ${JSON.stringify(DEFAULTS)}, 'usage: bench')));`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  return { status: child.status, stdout: child.stdout, stderr: child.stderr };
}

describe('parseFlags', () => {
  it('gives the defaults for no flags, and takes numbers, strings and switches', () => {
    expect(parseFlags([], DEFAULTS, '')).toEqual(DEFAULTS);
    expect(parseFlags(['--runs', '5', '--no-guest', '--name', 'b'], DEFAULTS, '')).toEqual({ runs: 5, name: 'b', 'no-guest': true });
  });

  it('refuses an unknown flag, a missing value and a bad number with the usage and status 2', () => {
    for (const [argv, message] of [
      [['--rusn', '5'], 'unknown option: --rusn'],
      [['--runs'], '--runs needs a value'],
      [['--runs', 'many'], '--runs takes a number'],
    ] as const) {
      const result = parseInChild([...argv]);
      expect(result, message).toMatchObject({ status: 2, stdout: '' });
      expect(result.stderr).toBe(`${message}\n\nusage: bench\n`);
    }
  });

  it('prints the usage and exits 0 for --help', () => {
    expect(parseInChild(['--help'])).toEqual({ status: 0, stdout: 'usage: bench\n', stderr: '' });
  });
});
