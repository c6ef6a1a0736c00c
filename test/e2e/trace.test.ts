// `--trace vsock` with a real guest: the seed document's two socat examples,
// packet by packet, in the order the virtio-vsock protocol prescribes
// (docs/vsock.md walks through the same trace).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imagesBuilt } from '../helpers/guest-images.js';
import { runTsvmm, startTsvmm } from '../helpers/tsvmm.js';
import { socatConnectWhenListening, socatListenOnce } from '../helpers/vsock-host.js';

/** The vsock lines of a trace, without their time column. */
function vsockLines(output: string): string[] {
  return output.split('\n').map((line) => /^\s*\d+\.\d+ vsock\s+(.*)$/.exec(line)?.[1]).filter((line): line is string => line !== undefined);
}

/** Index of the first line at or after `from` matching `pattern` (fails the test when there is none). */
function indexOf(lines: string[], pattern: RegExp, from = 0): number {
  const index = lines.findIndex((line, i) => i >= from && pattern.test(line));
  expect(index, `no line matching ${pattern} after line ${from} in:\n${lines.join('\n')}`).toBeGreaterThanOrEqual(0);
  return index;
}

describe.skipIf(!imagesBuilt)('--trace vsock', () => {
  let dir: string;
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'tsvmm-trace-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('guest -> host: REQUEST, RESPONSE, the data, SHUTDOWN, then the connection is reset', async () => {
    const socket = join(dir, 'g2h.vsock');
    const listener = socatListenOnce(`${socket}_5000`);
    const result = await runTsvmm(['--trace', 'vsock', '--vsock', `cid=3,socket=${socket}`,
      '--cmdline', 'quiet -- echo hello | socat - VSOCK-CONNECT:2:5000']);
    expect((await listener).stdout).toBe('hello\n');
    expect(result.code).toBe(0);
    const lines = vsockLines(result.stderr);
    const request = indexOf(lines, /^tx REQUEST 3:(\d+) -> 2:5000 len=0 buf_alloc=\d+ fwd_cnt=0$/);
    const port = /3:(\d+)/.exec(lines[request]!)![1];
    const response = indexOf(lines, new RegExp(`^rx RESPONSE 2:5000 -> 3:${port} len=0 buf_alloc=\\d+ fwd_cnt=0$`), request);
    const data = indexOf(lines, new RegExp(`^tx RW 3:${port} -> 2:5000 len=6 `), response);
    const shutdown = indexOf(lines, new RegExp(`^tx SHUTDOWN 3:${port} -> 2:5000 .* flags=`), data);
    indexOf(lines, new RegExp(`^(tx|rx) RST (3:${port} -> 2:5000|2:5000 -> 3:${port}) `), shutdown);
  });

  it('host -> guest: the guest answers the CONNECT line\'s REQUEST, the data follows', async () => {
    const socket = join(dir, 'h2g.vsock');
    const vm = startTsvmm(['--trace', 'vsock', '--vsock', `cid=3,socket=${socket}`,
      '--cmdline', 'quiet -- socat VSOCK-LISTEN:1234 -']);
    try {
      const reply = await socatConnectWhenListening(socket, 1234, 'hello\n');
      expect(reply.stdout).toMatch(/^OK \d+\n/);
      expect(await vm.exit(120_000)).toBe(0);
      const lines = vsockLines(vm.output());
      const response = indexOf(lines, /^tx RESPONSE 3:1234 -> 2:(\d+) len=0 /);
      const port = /2:(\d+)/.exec(lines[response]!)![1];
      expect(reply.stdout).toBe(`OK ${port}\n`);
      indexOf(lines, new RegExp(`^rx REQUEST 2:${port} -> 3:1234 len=0 `));
      indexOf(lines, new RegExp(`^rx RW 2:${port} -> 3:1234 len=6 `), response);
    } finally {
      await vm.exit(1000);
    }
  });
});
