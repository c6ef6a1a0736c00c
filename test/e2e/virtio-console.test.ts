// virtio-console with a real Linux guest (/dev/hvc0), in the two ways a user
// meets it:
//   --console file=PATH  what the guest writes to /dev/hvc0 lands in PATH;
//   --console tty --serial off  hvc0 is the kernel console, on tsvmm's stdout.
//
// What "exactly the bytes" means: tsvmm passes on exactly what the guest's
// virtio-console driver sends. /dev/hvc0 is a terminal in the guest, though,
// and its line discipline, like a serial port's, turns "\n" into "\r\n" in
// its default (cooked) mode. A guest program that wants binary-exact output
// puts the terminal in raw mode first, as it would on a serial line. Both
// behaviours are checked below, byte for byte.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstDifference } from '../helpers/disk-images.js';
import { imagesBuilt } from '../helpers/guest-images.js';
import { describeRun, type ProcessResult } from '../helpers/run-process.js';
import { runTsvmm, guestScriptCommand } from '../helpers/tsvmm.js';


const COOKED_TEXT = 'cooked line one\ncooked line two\n';
/** Every byte value, then text full of what a tty or a careless backend could change. */
const RAW_PAYLOAD = Buffer.concat([
  Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
  Buffer.from('raw line one\nraw line two\r\n\ttabbed\x1b[1m bold\x1b[0m\x03\x04\x1a\x7f\r\rend\n', 'latin1'),
]);
/** 1 MiB of `seq 1 200000` output, which the guest makes itself. */
const LARGE_BYTES = 1 << 20;
const largePayload = () => Buffer.from(Array.from({ length: 200_000 }, (_, i) => `${i + 1}\n`).join('').slice(0, LARGE_BYTES), 'latin1');

// hvc0 resets its terminal settings when its last file descriptor closes,
// so fd 3 stays open from `stty raw` to the last raw write. The 1 MiB goes
// through a file and `cat`, which writes in large blocks: `head` writing
// straight to a terminal would flush every line, and each write becomes one
// virtio buffer that the guest waits on (about 2 ms each in the sandbox).
const FILE_SCRIPT = `
exec 3<>/dev/hvc0
printf '${COOKED_TEXT.replaceAll('\n', '\\n')}' >&3
stty raw -echo <&3
echo ${RAW_PAYLOAD.toString('base64')} | base64 -d >&3
seq 1 200000 | head -c ${LARGE_BYTES} > /tmp/large
cat /tmp/large >&3
echo "hvc0-writes-done=$?"
`;

describe.skipIf(!imagesBuilt)('virtio-console with a Linux guest', () => {
  describe('--console file=PATH', () => {
    let dir: string;
    let consolePath: string;
    let result: ProcessResult;
    let output: Buffer;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'tsvmm-e2e-console-'));
      consolePath = join(dir, 'hvc0.out');
      result = await runTsvmm(['--console', `file=${consolePath}`, '--cmdline', `quiet -- ${guestScriptCommand(FILE_SCRIPT)}`],
        { timeoutMs: 240_000 });
      output = readFileSync(consolePath);
    });

    afterAll(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('runs the guest to a clean reset', () => {
      expect(result.timedOut, describeRun(result)).toBe(false);
      expect(result.stdout).toMatch(/^hvc0-writes-done=0\r?$/m);
      expect(result.stdout, describeRun(result)).toMatch(/^tsvmm-guest: exit 0\r?$/m);
      expect(result.code, describeRun(result)).toBe(0);
    });

    it('receives cooked-mode text with the guest tty\'s "\\n" -> "\\r\\n"', () => {
      const cooked = COOKED_TEXT.replaceAll('\n', '\r\n');
      expect(output.subarray(0, cooked.length).toString('latin1')).toBe(cooked);
    });

    it('receives raw-mode bytes exactly: all 256 byte values and control characters', () => {
      const start = COOKED_TEXT.replaceAll('\n', '\r\n').length;
      expect(output.subarray(start, start + RAW_PAYLOAD.length).toString('hex')).toBe(RAW_PAYLOAD.toString('hex'));
    });

    it('receives a 1 MiB write complete, and nothing else', () => {
      const start = COOKED_TEXT.replaceAll('\n', '\r\n').length + RAW_PAYLOAD.length;
      expect(output.length).toBe(start + LARGE_BYTES);
      expect(firstDifference(output.subarray(start), largePayload())).toBe(-1);
    });
  });

  describe('--console tty --serial off', () => {
    let result: ProcessResult;

    beforeAll(async () => {
      // No "quiet": the kernel's own boot messages must come through hvc0 too.
      result = await runTsvmm(['--serial', 'off', '--console', 'tty', '--cmdline',
        `-- ${guestScriptCommand('echo "cmdline=$(cat /proc/cmdline)"; echo "console=$(cut -d" " -f1 /proc/consoles)"')}`],
      { timeoutMs: 240_000 });
    });

    it('makes hvc0 the kernel console, whose output arrives on stdout', () => {
      expect(result.timedOut, describeRun(result)).toBe(false);
      expect(result.code, describeRun(result)).toBe(0);
      // A kernel message: the console is hvc0. (Messages from before the
      // virtio-console driver attached are not there: the guest's hvc
      // console drops what it is given while it has no device behind it.)
      expect(result.stdout).toMatch(/^\[ *\d+\.\d+\] Run \/init as init process\r?$/m);
      expect(result.stdout).toMatch(/^console=hvc0\r?$/m);
      expect(result.stdout).toMatch(/^cmdline=console=hvc0 reboot=k,panic_warm panic=-1 virtio_mmio\.device=4K@0x[0-9a-f]+:\d+ tsvmm\.status=0xd1000000 -- /m);
      expect(result.stdout, describeRun(result)).toMatch(/^tsvmm-guest: exit 0\r?$/m);
    });
  });
});
