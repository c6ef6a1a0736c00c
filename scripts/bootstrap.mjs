#!/usr/bin/env node
// Entry point of the npm scripts on a fresh machine: installs the npm
// packages when node_modules is missing or older than package-lock.json,
// then runs the zx script named on the command line with the remaining
// arguments. It uses nothing but Node itself, since it runs before
// `npm ci` has brought zx in.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const [script, ...args] = process.argv.slice(2);

function run(command, commandArgs) {
  const result = spawnSync(command, commandArgs, { cwd: root, stdio: 'inherit' });
  if (result.error) throw result.error;
  return result.status ?? 1;
}

const lock = join(root, 'package-lock.json');
const marker = join(root, 'node_modules', '.package-lock.json');
if (!existsSync(marker) || (existsSync(lock) && statSync(lock).mtimeMs > statSync(marker).mtimeMs)) {
  console.log('==> installing npm packages (npm ci)');
  const status = run('npm', ['ci', '--no-audit', '--no-fund']);
  if (status !== 0) process.exit(status);
}

// Compile the TypeScript sources when any is newer than the build.
const status = run(process.execPath, [join(root, 'scripts', 'ensure-built.mjs')]);
if (status !== 0) process.exit(status);

// The child gets Ctrl-C from the terminal itself; relay SIGTERM/SIGHUP, and
// stay alive until it has cleaned up so that its exit status is ours.
const child = spawn(process.execPath, [join(root, script), ...args], { stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => { if (signal !== 'SIGINT') child.kill(signal); });
}
child.on('exit', (code, signal) => process.exit(code ?? 128 + (signal === 'SIGKILL' ? 9 : 15)));
