// The nested sandbox (scripts/sandbox.mjs), driven the way a user drives it:
// through `npm run sandbox -- '<command>'`. One boot per test: each takes
// seconds, so there are few of them.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../helpers/guest-images.js';
import { runProcess } from '../helpers/run-process.js';

const insideSandbox = process.env.TSVMM_IN_SANDBOX === '1';
const sandbox = (...args: string[]) =>
  runProcess(process.execPath, [join(projectRoot, 'scripts/sandbox.mjs'), ...args], { cwd: projectRoot, timeoutMs: 280_000 });
/** QEMU's -name for one run, so the leftover check sees only that run's processes. */
const uniqueName = () => `tsvmm-sandbox-test-${process.pid}-${Math.random().toString(36).slice(2)}`;

describe.skipIf(insideSandbox || !existsSync('/usr/bin/qemu-system-x86_64'))('npm run sandbox', () => {
  it('runs a command with a working /dev/kvm and node, in the project directory', async () => {
    const r = await sandbox('ls -l /dev/kvm && node --version && pwd && echo "ci=$CI"');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^crw\S+ .* \/dev\/kvm$/m);
    expect(r.stdout).toContain(process.version);
    expect(r.stdout).toContain(projectRoot.replace(/\/$/, ''));
    expect(r.stdout).toContain(`ci=${process.env.CI ?? ''}`);
  });

  it('propagates the exit status', async () => {
    const r = await sandbox('exit 7');
    expect(r.code).toBe(7);
  });

  it('writes to the project directory and stops at its timeout without leftovers', async () => {
    const dir = mkdtempSync(join(projectRoot, 'node_modules', '.sandbox-test-'));
    try {
      const name = uniqueName();
      process.env.TSVMM_SANDBOX_NAME = name;
      const r = await sandbox('--timeout', '15', `echo written > ${dir}/file; sleep 600`).finally(() => {
        delete process.env.TSVMM_SANDBOX_NAME;
      });
      expect(r.code).toBe(124);
      expect(r.stderr).toContain('longer than 15 s');
      const leftover = await runProcess('pgrep', ['-f', name]);
      expect(leftover.stdout).toBe('');
      const check = await sandbox(`cat ${dir}/file`);
      expect(check.stdout).toContain('written');
      expect(readFileSync(join(dir, 'file'), 'utf8')).toBe('written\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
