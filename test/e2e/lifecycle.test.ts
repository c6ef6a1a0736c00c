// How tsvmm stops when asked to: SIGINT and SIGTERM while the guest is busy
// (sleeping) must stop the VM cleanly and promptly, exit with the shell's
// convention for a signal (128 + signal number: 130, 143), say so in one
// line, and leave nothing behind: no process, no temporary file, no vsock
// socket file. (A guest reset, exit 0, is covered by boot.test.ts; a guest
// that dies by test/kvm/pvm-boot.test.ts.)
import { existsSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { imagesBuilt } from '../helpers/guest-images.js';
import { processesMarkedWith, startMarked } from '../helpers/processes.js';

describe.skipIf(!imagesBuilt)('tsvmm stops cleanly on SIGINT and SIGTERM', () => {
  for (const [signal, status] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    it(`${signal}: exit ${status}, one line, no process, temporary file or socket left`, async () => {
      const socket = join(tmpdir(), `tsvmm-lifecycle-${signal}.sock`);
      const marker = `TSVMM_LIFECYCLE_TEST=${signal}-${process.pid}`;
      const tmpBefore = readdirSync(tmpdir()).sort();

      const vm = startMarked(marker, ['--vsock', `cid=3,socket=${socket}`, '--cmdline', 'quiet -- echo guest-up; sleep 600']);
      let stderr = '';
      vm.child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk; });
      await vm.waitForOutput(/^guest-up\r?$/m, 120_000);
      expect(statSync(socket).isSocket()).toBe(true);
      expect(processesMarkedWith(marker)).toContain(vm.child.pid);

      vm.child.kill(signal);
      // exit() SIGKILLs tsvmm after 30 s, which fails the status check.
      expect(await vm.exit(30_000)).toBe(status);
      expect(stderr).toBe(`tsvmm: stopped by ${signal}\n`);
      expect(existsSync(socket)).toBe(false);
      expect(processesMarkedWith(marker)).toEqual([]);
      expect(readdirSync(tmpdir()).sort()).toEqual(tmpBefore);
    });
  }
});
