import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  BlockDeviceError, BlockFeature, RequestStatus, RequestType, openBlockDevice, type VirtioBlock,
} from '../../../src/devices/virtio/block/index.js';
import { VIRTIO_F_VERSION_1 } from '../../../src/devices/virtio/device.js';
import { RING_FEATURES } from '../../../src/devices/virtio/queue.js';
import { VirtioTestDriver, type BufferSegment, type DriverQueue } from '../../helpers/virtio-driver.js';

const SECTORS = 64;
let dir: string;
let imagePath: string;
let original: Buffer;
const devices: VirtioBlock[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tsvmm-blk-'));
  imagePath = join(dir, 'disk.img');
  // every byte distinct enough to catch an offset mistake
  original = Buffer.alloc(SECTORS * 512 + 100); // the 100-byte tail is not addressable
  for (let i = 0; i < original.length; i++) original[i] = (i * 7 + (i >> 9)) & 0xff;
  writeFileSync(imagePath, original);
});

afterEach(async () => {
  await Promise.all(devices.splice(0).map((d) => d.close()));
  rmSync(dir, { recursive: true, force: true });
});

async function setUp(options: { readonly?: boolean; id?: string } = {}) {
  const device = await openBlockDevice({ path: imagePath, ...options });
  devices.push(device);
  const driver = VirtioTestDriver.create(device);
  return { device, driver, queue: driver.queue(0) };
}

function header(type: number, sector: bigint | number): Uint8Array {
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, type, true);
  view.setBigUint64(8, BigInt(sector), true);
  return bytes;
}

/** Adds a request: header, then `data` segments, then a status byte; returns nothing (use waitForUsed). */
function request(queue: DriverQueue, type: number, sector: bigint | number, data: BufferSegment[] = [], indirect = false): void {
  queue.addBuffer([{ readable: header(type, sector) }, ...data, { writable: 1 }], { indirect });
}

const statusOf = (used: { allWritable: Uint8Array }) => used.allWritable.at(-1);

describe('virtio-blk configuration', () => {
  it('offers FLUSH, SEG_MAX, SIZE_MAX, BLK_SIZE and the capacity in 512-byte sectors', async () => {
    const { driver } = await setUp();
    expect(driver.readDeviceFeatures()).toBe(VIRTIO_F_VERSION_1 | RING_FEATURES | BlockFeature.Flush
      | BlockFeature.SegMax | BlockFeature.SizeMax | BlockFeature.BlockSize);
    const config = new DataView(driver.readConfig(0, 24).buffer);
    expect(config.getBigUint64(0, true)).toBe(BigInt(SECTORS));
    expect(config.getUint32(8, true)).toBe(65536); // size_max
    expect(config.getUint32(12, true)).toBe(254); // seg_max
    expect(config.getUint32(20, true)).toBe(512); // blk_size
  });

  it('offers RO for a readonly disk', async () => {
    const { driver } = await setUp({ readonly: true });
    expect(driver.readDeviceFeatures() & BlockFeature.ReadOnly).toBe(BlockFeature.ReadOnly);
  });

  it('refuses a missing image, a directory and a bad id with a clear error', async () => {
    await expect(openBlockDevice({ path: join(dir, 'nope.img') })).rejects.toThrow(
      new BlockDeviceError(`disk image ${join(dir, 'nope.img')} does not exist (check --disk path=...)`));
    await expect(openBlockDevice({ path: dir })).rejects.toThrow(/is a directory/);
    await expect(openBlockDevice({ path: dir, readonly: true })).rejects.toThrow(/is not a regular file/);
    await expect(openBlockDevice({ path: imagePath, id: 'x'.repeat(21) })).rejects.toThrow(BlockDeviceError);
  });
});

describe('virtio-blk requests', () => {
  it.each([false, true])('reads sectors into split buffers (indirect: %s)', async (indirect) => {
    const { queue } = await setUp();
    // header split in two descriptors, data in three
    queue.addBuffer([
      { readable: header(RequestType.In, 5).subarray(0, 8) }, { readable: header(RequestType.In, 5).subarray(8) },
      { writable: 512 }, { writable: 1000 }, { writable: 24 }, { writable: 1 },
    ], { indirect });
    queue.kick();
    const [used] = await queue.waitForUsed(1);
    expect(used!.length).toBe(1537);
    expect(statusOf(used!)).toBe(RequestStatus.Ok);
    expect(Buffer.from(used!.bytes.subarray(0, 1536)).equals(original.subarray(5 * 512, 8 * 512))).toBe(true);
  });

  it('writes sectors and leaves the rest of the image alone', async () => {
    const { queue } = await setUp();
    const data = Buffer.alloc(1024, 0xab);
    data.fill(0xcd, 300);
    request(queue, RequestType.Out, 10, [{ readable: data.subarray(0, 300) }, { readable: data.subarray(300) }]);
    queue.kick();
    const [used] = await queue.waitForUsed(1);
    expect(used!.length).toBe(1);
    expect(statusOf(used!)).toBe(RequestStatus.Ok);
    const expected = Buffer.from(original);
    data.copy(expected, 10 * 512);
    expect(readFileSync(imagePath).equals(expected)).toBe(true);
  });

  it('flushes with a real fdatasync', async () => {
    const probe = await open(imagePath, 'r');
    const datasync = vi.spyOn(Object.getPrototypeOf(probe), 'datasync');
    await probe.close();
    try {
      const { queue } = await setUp();
      request(queue, RequestType.Flush, 0);
      queue.kick();
      const [used] = await queue.waitForUsed(1);
      expect(statusOf(used!)).toBe(RequestStatus.Ok);
      expect(datasync).toHaveBeenCalledTimes(1);
    } finally {
      datasync.mockRestore();
    }
  });

  it('answers GET_ID with the id, NUL-padded to 20 bytes', async () => {
    const { queue } = await setUp({ id: 'scratch-disk' });
    request(queue, RequestType.GetId, 0, [{ writable: 20 }]);
    queue.kick();
    const [used] = await queue.waitForUsed(1);
    expect(used!.length).toBe(21);
    expect(statusOf(used!)).toBe(RequestStatus.Ok);
    expect(Buffer.from(used!.bytes.subarray(0, 20)).toString('latin1')).toBe('scratch-disk\0\0\0\0\0\0\0\0');
  });

  it('answers unknown request types with UNSUPP', async () => {
    const { queue } = await setUp();
    request(queue, 11 /* DISCARD, not offered */, 0, [{ readable: new Uint8Array(16) }]);
    queue.kick();
    const [used] = await queue.waitForUsed(1);
    expect([used!.length, statusOf(used!)]).toEqual([1, RequestStatus.Unsupported]);
  });

  it.each([
    ['a read past the last sector', RequestType.In, SECTORS - 1, [{ writable: 1024 }]],
    ['a read starting past the end', RequestType.In, SECTORS, [{ writable: 512 }]],
    ['a read at sector 2^63', RequestType.In, 1n << 63n, [{ writable: 512 }]],
    ['a write past the last sector', RequestType.Out, SECTORS - 1, [{ readable: new Uint8Array(1024) }]],
    ['a read of part of a sector', RequestType.In, 0, [{ writable: 100 }]],
    ['a write of part of a sector', RequestType.Out, 0, [{ readable: new Uint8Array(700) }]],
  ] as [string, number, number | bigint, BufferSegment[]][])('%s fails with IOERR and leaves the image alone', async (_what, type, sector, data) => {
    const { queue } = await setUp();
    request(queue, type, sector, data);
    queue.kick();
    const [used] = await queue.waitForUsed(1);
    expect(statusOf(used!)).toBe(RequestStatus.IoError);
    expect(readFileSync(imagePath).equals(original)).toBe(true);
  });

  it('a header shorter than 16 bytes fails with IOERR', async () => {
    const { queue } = await setUp();
    queue.addBuffer([{ readable: new Uint8Array(8) }, { writable: 1 }]);
    queue.kick();
    const [used] = await queue.waitForUsed(1);
    expect(statusOf(used!)).toBe(RequestStatus.IoError);
  });

  it('a request with no writable byte for its status sets DEVICE_NEEDS_RESET', async () => {
    const { driver, queue } = await setUp();
    queue.addBuffer([{ readable: header(RequestType.Flush, 0) }]);
    queue.kick();
    expect(driver.needsReset).toBe(true);
    expect(driver.transportLog.at(-1)).toMatch(/no room for a status byte/);
  });

  it('refuses writes to a readonly disk (IOERR, file untouched) but reads and flushes', async () => {
    const { queue } = await setUp({ readonly: true });
    request(queue, RequestType.Out, 0, [{ readable: new Uint8Array(512).fill(1) }]);
    request(queue, RequestType.Flush, 0);
    request(queue, RequestType.In, 1, [{ writable: 512 }]);
    queue.kick();
    const used = await queue.waitForUsed(3);
    const byHead = used.sort((a, b) => a.head - b.head);
    expect(byHead.map(statusOf)).toEqual([RequestStatus.IoError, RequestStatus.Ok, RequestStatus.Ok]);
    expect(Buffer.from(byHead[2]!.bytes.subarray(0, 512)).equals(original.subarray(512, 1024))).toBe(true);
    expect(readFileSync(imagePath).equals(original)).toBe(true);
  });

  it('serves several requests at once without blocking the device loop', async () => {
    const { driver, queue } = await setUp();
    for (let i = 0; i < 8; i++) request(queue, RequestType.In, i * 4, [{ writable: 2048 }]);
    for (let i = 0; i < 4; i++) request(queue, RequestType.Out, 40 + i, [{ readable: new Uint8Array(512).fill(i + 1) }]);
    queue.kick();
    expect(queue.takeUsed()).toEqual([]); // all 12 are in flight: nothing completed synchronously
    const used = await queue.waitForUsed(12);
    expect(used.length).toBe(12);
    expect(used.every((u) => statusOf(u) === RequestStatus.Ok)).toBe(true);
    const reads = used.filter((u) => u.length === 2049);
    expect(reads.length).toBe(8);
    for (const read of reads) {
      const sector = original.indexOf(Buffer.from(read.bytes.subarray(0, 2048))) / 512;
      expect(Number.isInteger(sector) && sector % 4 === 0).toBe(true);
    }
    const image = readFileSync(imagePath);
    for (let i = 0; i < 4; i++) expect(image.subarray((40 + i) * 512, (41 + i) * 512).every((b) => b === i + 1)).toBe(true);
    expect(driver.interrupts.count).toBeGreaterThanOrEqual(1);
    expect(driver.needsReset).toBe(false);
  });

  it('drops completions of requests in flight at reset, and close() waits for their I/O', async () => {
    const { device, driver, queue } = await setUp();
    request(queue, RequestType.In, 0, [{ writable: 4096 }]);
    queue.kick();
    const buffer = Number(driver.memory.readU64(queue.descTable + 16)); // descriptor 1: the data buffer
    driver.reset();
    // The read goes straight into guest memory (no copy of tsvmm's to drop),
    // so it must be over before that memory can go: close() waits for it.
    await device.close();
    devices.splice(devices.indexOf(device), 1);
    expect(Buffer.from(driver.memory.slice(buffer, 4096)).equals(original.subarray(0, 4096))).toBe(true);
    expect(queue.usedIndex).toBe(0);
  });

  it('close() closes the image file', async () => {
    const fds = () => readdirSync('/proc/self/fd').length;
    const before = fds();
    const device = await openBlockDevice({ path: imagePath });
    expect(fds()).toBe(before + 1);
    await device.close();
    expect(fds()).toBe(before);
  });
});
