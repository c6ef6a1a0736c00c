// virtio-blk with a real Linux guest: what a user of `--disk` relies on.
// One guest boot serves every check (boots are expensive in the nested
// sandbox): it is given two disks,
//
//   /dev/vda  a blank 64 MiB scratch image, writable, id=scratch
//   /dev/vdb  a copy of rootfs.ext4, readonly=on, with a 20-character id
//             (the longest GET_ID can return: no NUL terminator)
//
// and the guest reports what it sees as `key=value` lines on the serial
// console. The scratch image gets a 64 MiB pattern in which every 16 bytes
// say where they belong (helpers/disk-images.ts); the host checks every byte
// of the file once the guest has reset.
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  PATTERN_BLOCK_BYTES, createSparseImage, describeAt, expectedPattern, firstDifference, writePatternScript,
} from '../helpers/disk-images.js';
import { images, imagesBuilt } from '../helpers/guest-images.js';
import { describeRun, type ProcessResult } from '../helpers/run-process.js';
import { runTsvmm, guestScriptCommand } from '../helpers/tsvmm.js';

const PATTERN_BLOCKS = 64;
const SCRATCH_ID = 'scratch';
const ROOTFS_ID = 'rootfs-20-chars-long';


const GUEST_SCRIPT = `
echo "vda-serial=$(cat /sys/block/vda/serial)"
echo "vdb-serial=$(cat /sys/block/vdb/serial)"
echo "disks=$(ls /sys/block | tr '\\n' ' ')"
echo "vda-ro=$(cat /sys/block/vda/ro)"
echo "vdb-ro=$(cat /sys/block/vdb/ro)"
dd if=/dev/zero of=/dev/vdb bs=4096 count=1 oflag=direct 2>/tmp/dd-error
echo "vdb-write-status=$? $(grep -o 'error.*' /tmp/dd-error)"
mount -t ext4 -o ro /dev/vdb /mnt && echo "vdb-hello=$(cat /mnt/hello.txt)" && umount /mnt
${writePatternScript('/dev/vda', PATTERN_BLOCKS)}
echo "pattern-write-status=$?"
echo 3 > /proc/sys/vm/drop_caches
echo "pattern-read-sha256=$(dd if=/dev/vda bs=1M count=${PATTERN_BLOCKS} iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)"
`;

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** The guest's `key=value` lines (the serial console ends lines with \r\n). */
function reports(stdout: string): Map<string, string> {
  const entries = stdout.split(/\r?\n/).map((line) => /^([a-z0-9-]+)=(.*)$/.exec(line)).filter((m) => m !== null);
  return new Map(entries.map((m) => [m[1]!, m[2]!]));
}

describe.skipIf(!imagesBuilt)('virtio-blk with a Linux guest', () => {
  let dir: string;
  let scratchPath: string;
  let rootfsCopy: string;
  let rootfsBefore: Buffer;
  let expected: Buffer;
  let result: ProcessResult;
  let seen: Map<string, string>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsvmm-e2e-blk-'));
    scratchPath = join(dir, 'scratch.img');
    rootfsCopy = join(dir, 'rootfs.ext4');
    createSparseImage(scratchPath, PATTERN_BLOCKS * PATTERN_BLOCK_BYTES);
    copyFileSync(images.rootfs, rootfsCopy);
    rootfsBefore = readFileSync(rootfsCopy);
    result = await runTsvmm([
      '--disk', `path=${scratchPath},id=${SCRATCH_ID}`,
      '--disk', `path=${rootfsCopy},readonly=on,id=${ROOTFS_ID}`,
      '--cmdline', `quiet -- ${guestScriptCommand(GUEST_SCRIPT)}`,
    ], { timeoutMs: 240_000 });
    seen = reports(result.stdout);
    expected = expectedPattern(PATTERN_BLOCKS);
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs the guest to a clean reset', () => {
    expect(result.timedOut, describeRun(result)).toBe(false);
    expect(result.stdout, describeRun(result)).toMatch(/^tsvmm-guest: exit 0\r?$/m);
    expect(result.code, describeRun(result)).toBe(0);
  });

  it('shows two disks, vda and vdb, whose serial is their id=', () => {
    expect(seen.get('disks')).toBe('vda vdb ');
    expect(seen.get('vda-serial')).toBe(SCRATCH_ID);
    expect(seen.get('vdb-serial')).toBe(ROOTFS_ID);
  });

  it('mounts rootfs.ext4 (readonly=on) as ext4 and reads /hello.txt', () => {
    expect(seen.get('vdb-hello')).toBe('hello from rootfs.ext4');
  });

  it('makes a readonly=on disk read-only: writes fail and the image file is unchanged', () => {
    // The guest kernel sees VIRTIO_BLK_F_RO and refuses the write itself
    // (EPERM); the device's own refusal (IOERR for a write request that
    // gets through anyway) is tested in test/devices/virtio/block.test.ts.
    expect(seen.get('vda-ro')).toBe('0');
    expect(seen.get('vdb-ro')).toBe('1');
    expect(seen.get('vdb-write-status')).toBe("1 error writing '/dev/vdb': Operation not permitted");
    expect(firstDifference(readFileSync(rootfsCopy), rootfsBefore)).toBe(-1);
  });

  it('writes a 64 MiB pattern that reaches the image file byte for byte', () => {
    expect(seen.get('pattern-write-status')).toBe('0');
    const written = readFileSync(scratchPath);
    const at = firstDifference(written, expected);
    expect(at, `first difference at byte ${at}: file has ${describeAt(written, at)}, expected ${describeAt(expected, at)}`)
      .toBe(-1);
  });

  it('reads the pattern back in the guest (O_DIRECT, after dropping the page cache)', () => {
    expect(seen.get('pattern-read-sha256')).toBe(sha256(expected));
  });
});
