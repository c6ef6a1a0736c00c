// The guest's verdict becomes tsvmm's exit status, which is all a CI step
// reads: the command's status through the guest status device, a kernel
// panic (seen in guest RAM at the reset, or on the console), --timeout, and
// the boot timer's figures. Each case is one real boot of the default guest.
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT_GUEST_PANIC, EXIT_TIMEOUT } from '../../src/vm/vm-exit.js';
import { imagesBuilt } from '../helpers/guest-images.js';
import { processesMarkedWith, startMarked } from '../helpers/processes.js';
import { describeRun } from '../helpers/run-process.js';
import { STATUS_DEVICE, runInGuest, runTsvmm } from '../helpers/tsvmm.js';

const DEVICE = STATUS_DEVICE;

describe.skipIf(!imagesBuilt)('the guest\'s exit status is tsvmm\'s', () => {
  for (const [command, status] of [['exit 3', 3], ['true', 0], ['false', 1], ['exit 77', 77]] as const) {
    it(`"-- ${command}" exits ${status}, with nothing on stderr`, async () => {
      const result = await runInGuest(command);
      expect({ code: result.code, stderr: result.stderr }, describeRun(result)).toEqual({ code: status, stderr: '' });
      expect(result.stdout).toContain(`tsvmm-guest: exit ${status}`);
    });
  }

  it('the interactive shell\'s exit status too, and the bzImage reports the same way', async () => {
    const { images } = await import('../helpers/guest-images.js');
    const result = await runTsvmm(['--kernel', images.bzImage, '--initramfs', images.initramfs, '--cmdline', 'quiet'], { input: 'exit 42\n' });
    expect({ code: result.code, stderr: result.stderr }, describeRun(result)).toEqual({ code: 42, stderr: '' });
  });

  it('a status remembered in the STATUS register is the exit status of a later reset', async () => {
    // `reboot -f` resets through the i8042: without the remembered status, 0.
    const result = await runInGuest(`devmem $((${DEVICE} + 4)) 8 5; reboot -f`);
    expect({ code: result.code, stderr: result.stderr }, describeRun(result)).toEqual({ code: 5, stderr: '' });
  });
});

describe.skipIf(!imagesBuilt)('a guest kernel panic is a failure', () => {
  const PANIC_STDERR = /^tsvmm: guest kernel panicked: "(.+)"\n$/;

  it('no init: exits 101 with the panic\'s reason on stderr', async () => {
    const result = await runTsvmm(['--cmdline', 'quiet rdinit=/no/such/init']);
    expect(result.code, describeRun(result)).toBe(EXIT_GUEST_PANIC);
    expect(result.stderr).toMatch(PANIC_STDERR);
    expect(result.stderr).toMatch(/VFS: Unable to mount root fs|No working init found/);
  });

  it('more than 32 words for init ("Too many boot init vars"): exits 101', async () => {
    const words = Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ');
    const result = await runTsvmm(['--cmdline', `quiet -- echo ${words}`]);
    expect(result.code, describeRun(result)).toBe(EXIT_GUEST_PANIC);
    expect(result.stderr).toMatch(/^tsvmm: guest kernel panicked: "Too many boot init vars at .+"\n$/);
  });

  it('with the serial port off, the reset flag alone still tells the panic', async () => {
    const result = await runTsvmm(['--serial', 'off', '--cmdline', 'rdinit=/no/such/init']);
    expect(result.code, describeRun(result)).toBe(EXIT_GUEST_PANIC);
    expect(result.stderr).toBe('tsvmm: guest kernel panicked: (its reason did not reach a console)\n');
  });

  it('with panic=0 (the kernel halts instead of resetting), the console tells it', async () => {
    const result = await runTsvmm(['--timeout', '120', '--cmdline', 'quiet panic=0 rdinit=/no/such/init']);
    expect(result.code, describeRun(result)).toBe(EXIT_GUEST_PANIC);
    expect(result.stderr).toMatch(PANIC_STDERR);
  });
});

describe.skipIf(!imagesBuilt)('--timeout and --boot-timer', () => {
  it('--timeout 15 stops a guest that sleeps: exit 124 after about 15 s, one line, nothing left behind', async () => {
    const marker = `TSVMM_TIMEOUT_TEST=${process.pid}`;
    const socket = join(tmpdir(), `tsvmm-timeout-${process.pid}.sock`);
    const tmpBefore = readdirSync(tmpdir()).sort();
    const started = Date.now();
    const vm = startMarked(marker, ['--timeout', '15', '--vsock', `cid=3,socket=${socket}`, '--cmdline', 'quiet -- sleep 1000']);
    let stderr = '';
    vm.child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk; });
    expect(await vm.exit(120_000)).toBe(EXIT_TIMEOUT);
    const seconds = (Date.now() - started) / 1000;
    // Not a timing assertion on tsvmm's speed: the VM must not end before
    // its time, and must end (the bound is the test's own time-out).
    expect(seconds).toBeGreaterThanOrEqual(15);
    expect(stderr).toBe('tsvmm: timed out after 15 s: the VM was stopped\n');
    expect(existsSync(socket)).toBe(false);
    expect(processesMarkedWith(marker)).toEqual([]);
    expect(readdirSync(tmpdir()).sort()).toEqual(tmpBefore);
  });

  it('--boot-timer prints the first instruction and init, in that order, and where the start-up went, before the guest\'s verdict', async () => {
    const result = await runInGuest('exit 4', ['--boot-timer']);
    expect(result.code, describeRun(result)).toBe(4);
    const match = result.stderr.match(new RegExp('^tsvmm: boot timer: first instruction at (\\d+) ms, init at (\\d+) ms '
      + '\\(since tsvmm started; to the first instruction: Node and imports (\\d+) ms, VM and devices (\\d+) ms, '
      + 'kernel and initramfs (\\d+) ms, vCPUs (\\d+) ms, vCPU threads (\\d+) ms\\)\\n$'));
    expect(match, describeRun(result)).not.toBeNull();
    const [firstInstruction, init, ...phases] = match!.slice(1).map(Number);
    expect(firstInstruction).toBeGreaterThan(0);
    expect(init).toBeGreaterThan(firstInstruction!);
    // The phases are the first instruction's time, cut up (each rounded: within a few ms).
    expect(Math.abs(phases.reduce((sum, ms) => sum + ms, 0) - firstInstruction!)).toBeLessThanOrEqual(phases.length);
  });
});
