// Disk images for the virtio-blk end-to-end tests, and a known pattern that
// the busybox guest can write quickly and the host can recompute exactly.
//
// The pattern is made of 1 MiB blocks of 16-byte text records:
//
//   "blk 07 +0001232\n"   block 07, byte offset 1232 inside the block
//
// so every record says where it belongs: a request written at the wrong
// sector, a segment dropped or duplicated, or a block written twice shows up
// as a record in the wrong place, whatever its size. Generating 64 MiB in a
// shell loop would take minutes in the nested guest, so the guest builds one
// block template once with awk ("blk @# +..."), and `tr` stamps each block's
// two digits over the '@' and '#' placeholders on the way to dd.
import { closeSync, openSync, ftruncateSync } from 'node:fs';

export const PATTERN_BLOCK_BYTES = 1 << 20;
const RECORD_BYTES = 16;
/** Where "@#" sits in a record. */
const STAMP_OFFSET = 4;
/** Two digits stamp the block number. */
const MAX_PATTERN_BLOCKS = 100;

/** Creates (or truncates) a sparse raw image of `bytes` zeros. */
export function createSparseImage(path: string, bytes: number): void {
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, bytes);
  } finally {
    closeSync(fd);
  }
}

function checkBlocks(blocks: number): void {
  if (!Number.isInteger(blocks) || blocks < 1 || blocks > MAX_PATTERN_BLOCKS) {
    throw new RangeError(`the pattern has 1 to ${MAX_PATTERN_BLOCKS} blocks, not ${blocks}`);
  }
}

/**
 * Guest shell commands that write `blocks` MiB of the pattern at the start
 * of `device`, with O_DIRECT and an fsync at the end, so the data has gone
 * through virtio-blk (not just the guest's page cache) when dd returns. dd's
 * status is the script's status.
 */
export function writePatternScript(device: string, blocks: number): string {
  checkBlocks(blocks);
  return [
    `awk 'BEGIN { for (o = 0; o < ${PATTERN_BLOCK_BYTES}; o += ${RECORD_BYTES}) printf "blk @# +%07d\\n", o }' > /tmp/pattern-block`,
    `for b in $(printf '%02d ' $(seq 0 ${blocks - 1})); do tr '@#' "$b" < /tmp/pattern-block; done |`
      + ` dd of=${device} bs=1M iflag=fullblock oflag=direct conv=fsync 2>/dev/null`,
  ].join('\n');
}

/** The bytes writePatternScript() writes (built the way the guest builds them: template, then stamps). */
export function expectedPattern(blocks: number): Buffer {
  checkBlocks(blocks);
  const template = Buffer.alloc(PATTERN_BLOCK_BYTES);
  for (let offset = 0; offset < PATTERN_BLOCK_BYTES; offset += RECORD_BYTES) {
    template.write(`blk @# +${String(offset).padStart(7, '0')}\n`, offset, 'latin1');
  }
  const pattern = Buffer.alloc(blocks * PATTERN_BLOCK_BYTES);
  for (let block = 0; block < blocks; block++) {
    const start = block * PATTERN_BLOCK_BYTES;
    template.copy(pattern, start);
    const [tens, units] = Buffer.from(String(block).padStart(2, '0'), 'latin1');
    for (let record = start; record < start + PATTERN_BLOCK_BYTES; record += RECORD_BYTES) {
      pattern[record + STAMP_OFFSET] = tens!;
      pattern[record + STAMP_OFFSET + 1] = units!;
    }
  }
  return pattern;
}

/** Index of the first byte where `actual` and `expected` differ (or where one ends), -1 when equal. */
export function firstDifference(actual: Uint8Array, expected: Uint8Array): number {
  const length = Math.min(actual.byteLength, expected.byteLength);
  // Compare 1 MiB at a time with Buffer.compare (native), then find the byte.
  const chunk = 1 << 20;
  for (let start = 0; start < length; start += chunk) {
    const end = Math.min(start + chunk, length);
    if (Buffer.compare(actual.subarray(start, end), expected.subarray(start, end)) === 0) continue;
    for (let i = start; i < end; i++) if (actual[i] !== expected[i]) return i;
  }
  return actual.byteLength === expected.byteLength ? -1 : length;
}

/** A few records around `offset`, for a failure message. */
export function describeAt(bytes: Uint8Array, offset: number): string {
  const start = Math.max(0, offset - (offset % RECORD_BYTES) - RECORD_BYTES);
  return JSON.stringify(Buffer.from(bytes.subarray(start, start + 3 * RECORD_BYTES)).toString('latin1'));
}
