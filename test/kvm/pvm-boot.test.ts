// A real Linux kernel on this machine's PVM /dev/kvm. PVM emulates guest
// kernel code instruction by instruction and cannot run a stock kernel to
// the end (docs/architecture.md, "The development machines"), but the kernel gets far enough to print, on
// the serial port, what tsvmm told it through the boot protocol: its own
// banner (the ELF was loaded and entered in long mode), the command line
// (read from boot_params.hdr.cmd_line_ptr) and the e820 map (read from the
// zero page). Those three lines prove the boot protocol without a sandbox.
// Then the kernel hits an instruction PVM cannot emulate, and tsvmm must
// report that in one line and exit non-zero.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { e820Map, formatE820 } from '../../src/arch/x86_64/e820.js';
import { MiB } from '../../src/config/types.js';
import { images } from '../helpers/guest-images.js';
import { runTsvmm } from '../helpers/tsvmm.js';

/** PVM loaded and its /dev/kvm there (a machine can have the module without the device node). */
const isPvm = existsSync('/sys/module/kvm_pvm') && existsSync('/dev/kvm');
const MEMORY_BYTES = 128 * MiB;

describe.skipIf(!isPvm || !existsSync(images.vmlinux))('a real kernel on PVM /dev/kvm (dies in early boot)', () => {
  const socketDir = mkdtempSync(join(tmpdir(), 'tsvmm-pvm-'));
  const socket = join(socketDir, 'vm.vsock');
  afterAll(() => rmSync(socketDir, { recursive: true, force: true }));

  it('prints the banner, tsvmm\'s command line and e820 map, then tsvmm reports the death in one line', async () => {
    // The vsock device adds a virtio_mmio.device= parameter, so the command
    // line shows where tsvmm puts its own parameters: defaults first, the
    // user's kernel parameters, device announcements, then " -- " and init's.
    // The kernel dies before its serial driver starts, so this asks for the
    // early console, as the README tells a user whose kernel dies that early.
    const result = await runTsvmm([
      '--kernel', images.vmlinux,
      '--memory', `size=${MEMORY_BYTES / MiB}M`,
      '--cmdline', 'earlyprintk=ttyS0 nokaslr -- echo never-runs',
      '--vsock', `cid=3,socket=${socket}`,
    ], { timeoutMs: 150_000 });
    expect(result.timedOut).toBe(false);

    const serial = result.stdout;
    expect(serial).toMatch(/^\[\s*\d+\.\d+\] Linux version 6\.12\.\d+ /m);
    const commandLine = serial.match(/^\[\s*\d+\.\d+\] Command line: (.*?)\r?$/m)?.[1];
    expect(commandLine).toBe(
      'console=ttyS0 reboot=k,panic_warm panic=-1 earlyprintk=ttyS0 nokaslr virtio_mmio.device=4K@0xd0000000:5 tsvmm.status=0xd1000000 -- echo never-runs');
    const e820Lines = [...serial.matchAll(/^\[\s*\d+\.\d+\] (BIOS-e820: .*?)\r?$/gm)].map((match) => match[1]);
    expect(e820Lines).toEqual(formatE820(e820Map(MEMORY_BYTES)));

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^tsvmm: guest died: [^\n]+ at rip 0x[0-9a-f]+; rsp 0x[^\n]+ cr2 0x[0-9a-f]+, [^\n]+\n$/);
    // Even when the guest dies, tsvmm cleans up after itself.
    expect(existsSync(socket)).toBe(false);
  }, 180_000);
});
