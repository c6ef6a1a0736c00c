// `--trace`: the options, the line formats of each layer, and that nothing
// is written while tracing is off.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Bus } from '../../src/bus/bus.js';
import { parseCommandLine } from '../../src/cli.js';
import { ConfigError } from '../../src/config.js';
import { parseTrace } from '../../src/config/options.js';
import { Op, SHUTDOWN_BOTH, type PacketHeader } from '../../src/devices/virtio/vsock/packet.js';
import { describePacket } from '../../src/devices/virtio/vsock/packet-trace.js';
import { TRACE_CATEGORIES, trace } from '../../src/trace.js';
import { fakePackageRoot } from '../helpers/fake-package.js';

let dir: string;
let root: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tsvmm-trace-'));
  root = fakePackageRoot(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => trace.reset());

/** Runs `body` with `categories` traced into a file; returns the lines without their time column. */
function traced(categories: Parameters<typeof trace.configure>[0], body: () => void): string[] {
  const file = join(dir, `trace-${Math.random()}.txt`);
  const fd = openSync(file, 'w');
  try {
    trace.configure(categories, fd);
    body();
  } finally {
    trace.reset();
    closeSync(fd);
  }
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => line.trim().replace(/^\d+\.\d{3}\s+/, ''));
}

describe('--trace options', () => {
  it('take a list, all, or a file alone (everything into it)', () => {
    expect(parseTrace('vsock,mmio', undefined)).toEqual({ categories: ['vsock', 'mmio'] });
    expect(parseTrace('all', undefined).categories).toEqual([...TRACE_CATEGORIES]);
    expect(parseTrace(undefined, '/tmp/t.txt')).toEqual({ categories: [...TRACE_CATEGORIES], file: '/tmp/t.txt' });
    const config = parseCommandLine(['--trace', 'vsock', '--trace-file', join(dir, 'out.txt')], { packageRoot: root });
    expect(config.trace).toEqual({ categories: ['vsock'], file: join(dir, 'out.txt') });
  });

  it('refuse an unknown category or a second --trace-file in one line', () => {
    expect(() => parseTrace('vsock,packets', undefined)).toThrow(new ConfigError('--trace: unknown category "packets" (valid: exits, pio, mmio, virtio, vsock, blk, or all)'));
    expect(() => parseCommandLine(['--trace-file', 'a', '--trace-file', 'b'], { packageRoot: root }))
      .toThrow('--trace-file: given 2 times; it takes one value');
    expect(() => parseCommandLine(['--trace-file', join(dir, 'no', 'such', 'dir', 't.txt')], { packageRoot: root })).toThrow(ConfigError);
  });
});

describe('trace lines', () => {
  const device = {
    read: (_offset: number, data: Uint8Array) => data.fill(0x12),
    write: () => {},
    registerName: (offset: number) => (offset === 0x50 ? 'QueueNotify' : undefined),
  };

  it('name the device and register of an access, with the value written or read', () => {
    const mmio = new Bus('MMIO', 'mmio');
    mmio.register(0xd000_0000, 0x200, device, 'virtio-mmio vsock');
    const lines = traced(['mmio'], () => {
      mmio.write(0xd000_0050, Uint8Array.of(1, 0, 0, 0));
      mmio.read(0xd000_0008, new Uint8Array(2));
    });
    expect(lines).toEqual([
      'mmio   virtio-mmio vsock@0xd0000000 QueueNotify <- 0x1',
      'mmio   virtio-mmio vsock@0xd0000000 +0x8 -> 0x1212',
    ]);
  });

  it('cost nothing but a test when off: no line for a category that is not on', () => {
    const pio = new Bus('port I/O', 'pio');
    pio.register(0x3f8, 8, device, 'serial');
    expect(traced(['mmio'], () => pio.write(0x3f8, Uint8Array.of(0x41)))).toEqual([]);
    expect(traced(['pio'], () => pio.write(0x3f8, Uint8Array.of(0x41)))).toEqual(['pio    serial@0x3f8 +0x0 <- 0x41']);
  });

  it('decode a vsock packet header', () => {
    const header: PacketHeader = {
      srcCid: 3, dstCid: 2, srcPort: 49152, dstPort: 1234, len: 0, type: 1, op: Op.Request, flags: 0, bufAlloc: 262144, fwdCnt: 0,
    };
    expect(describePacket('tx', header)).toBe('tx REQUEST 3:49152 -> 2:1234 len=0 buf_alloc=262144 fwd_cnt=0');
    expect(describePacket('rx', { ...header, op: Op.Shutdown, flags: SHUTDOWN_BOTH }))
      .toBe('rx SHUTDOWN 3:49152 -> 2:1234 len=0 buf_alloc=262144 fwd_cnt=0 flags=RCV|SEND');
    expect(describePacket('tx', { ...header, op: Op.Rw, len: 6, fwdCnt: 12 }))
      .toBe('tx RW 3:49152 -> 2:1234 len=6 buf_alloc=262144 fwd_cnt=12');
  });
});
