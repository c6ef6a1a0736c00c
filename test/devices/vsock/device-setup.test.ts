// The device's identity, config space and options, and its listening socket:
// stale socket replacement, clear errors, clean removal.
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VIRTIO_F_RING_EVENT_IDX, VirtioDeviceType } from '../../../src/devices/virtio/device.js';
import { VSOCK_DEFAULTS, VsockConfigError, createVsockDevice, type VsockDevice } from '../../../src/devices/virtio/vsock/device.js';
import { VsockSocketError } from '../../../src/devices/virtio/vsock/unix-backend.js';
import { VirtioTestDriver } from '../../helpers/virtio-driver.js';

let dir: string;
const devices: VsockDevice[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tsvmm-vsock-setup-'));
});

afterEach(async () => {
  for (const d of devices.splice(0)) await d.close();
  rmSync(dir, { recursive: true, force: true });
});

async function create(socketPath = join(dir, 'v.sock'), cid = 3): Promise<VsockDevice> {
  const device = await createVsockDevice({ cid, socketPath });
  devices.push(device);
  return device;
}

describe('virtio-vsock device identity', () => {
  it('is device type 19 with rx, tx and event queues of 256 and no feature bits of its own unless asked for EVENT_IDX', async () => {
    const device = await create();
    expect(device.type).toBe(19);
    expect(device.type).toBe(VirtioDeviceType.Vsock);
    expect(device.queueMaxSizes).toEqual([256, 256, 256]);
    expect(device.features).toBe(0n); // the transport adds VERSION_1; no SEQPACKET, no indirect descriptors
    const withEventIdx = await createVsockDevice({ cid: 4, socketPath: join(dir, 'e.sock'), eventIdx: true });
    devices.push(withEventIdx);
    expect(withEventIdx.features).toBe(VIRTIO_F_RING_EVENT_IDX);
    expect(device.name).toBe('virtio-vsock cid=3');
  });

  it('shows guest_cid as le64 in its config space, read whole or in pieces', async () => {
    const device = await create(undefined, 0x12345678);
    const driver = VirtioTestDriver.create(device);
    expect([...driver.readConfig(0, 8)]).toEqual([0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0]);
    expect([...driver.readConfig(0, 4)]).toEqual([0x78, 0x56, 0x34, 0x12]);
    expect([...driver.readConfig(4, 4)]).toEqual([0, 0, 0, 0]);
    expect([...driver.readConfig(1, 2)]).toEqual([0x56, 0x34]);
    driver.writeConfig(0, new Uint8Array([9, 9, 9, 9])); // read-only: ignored
    expect([...driver.readConfig(0, 4)]).toEqual([0x78, 0x56, 0x34, 0x12]);
  });

  it('offers only VERSION_1 to the driver', async () => {
    const device = await create();
    const driver = VirtioTestDriver.create(device);
    expect(driver.readDeviceFeatures()).toBe(1n << 32n);
  });

  it('keeps the documented defaults', () => {
    expect(VSOCK_DEFAULTS).toEqual({
      maxConnections: 1023, maxPendingClients: 1023, connectLineTimeoutMs: 10_000,
      connectionBufferSize: 256 * 1024, requestTimeoutMs: 2000,
      connectTimeoutMs: 2000, lingerTimeoutMs: 2000, queueSize: 256,
    });
  });

  it.each([
    [0, /cid=0 is not usable/],
    [2, /cid=2 is not usable/],
    [0xffff_ffff, /from 3 to 4294967294/],
    [3.5, /cid=3.5/],
  ])('refuses cid %s', async (cid, message) => {
    await expect(createVsockDevice({ cid, socketPath: join(dir, 'x.sock') })).rejects.toThrow(message);
    await expect(createVsockDevice({ cid, socketPath: join(dir, 'x.sock') })).rejects.toBeInstanceOf(VsockConfigError);
    expect(existsSync(join(dir, 'x.sock'))).toBe(false);
  });

  it('refuses a socket path too long for sockaddr_un, and bad option values', async () => {
    await expect(createVsockDevice({ cid: 3, socketPath: join(dir, 'x'.repeat(100)) })).rejects.toThrow(/too long/);
    await expect(createVsockDevice({ cid: 3, socketPath: '' })).rejects.toThrow(/socket=<path>/);
    await expect(createVsockDevice({ cid: 3, socketPath: join(dir, 'y.sock'), maxConnections: 0 })).rejects.toThrow(/maxConnections=0/);
    await expect(createVsockDevice({ cid: 3, socketPath: join(dir, 'y.sock'), connectLineTimeoutMs: 0 })).rejects.toThrow(/connectLineTimeoutMs=0/);
  });
});

describe('the listening socket', () => {
  it('is created at socketPath and removed by close()', async () => {
    const path = join(dir, 'v.sock');
    const device = await create(path);
    expect(lstatSync(path).isSocket()).toBe(true);
    await device.close();
    devices.length = 0;
    expect(existsSync(path)).toBe(false);
  });

  it('replaces a stale socket left by a dead tsvmm', async () => {
    const path = join(dir, 'stale.sock');
    spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`]);
    expect(lstatSync(path).isSocket()).toBe(true);
    await create(path);
    // It is ours now: a client gets through.
    await new Promise<void>((resolve, reject) => {
      const client = net.createConnection({ path }, () => {
        client.destroy();
        resolve();
      });
      client.on('error', reject);
    });
  });

  it('refuses a path a live process listens on', async () => {
    const path = join(dir, 'live.sock');
    const other = net.createServer().listen(path);
    await new Promise((r) => other.once('listening', r));
    try {
      const attempt = createVsockDevice({ cid: 3, socketPath: path });
      await expect(attempt).rejects.toThrow(/is in use by a running process/);
      await expect(createVsockDevice({ cid: 3, socketPath: path })).rejects.toBeInstanceOf(VsockSocketError);
      expect(lstatSync(path).isSocket()).toBe(true); // left alone
    } finally {
      await new Promise((r) => other.close(r));
    }
  });

  it('refuses a path that is not a socket, and leaves the file alone', async () => {
    const path = join(dir, 'file.txt');
    writeFileSync(path, 'precious');
    await expect(createVsockDevice({ cid: 3, socketPath: path })).rejects.toThrow(
      `vsock socket path ${path} exists and is not a Unix socket; remove it or choose another socket= path`);
    expect(lstatSync(path).isFile()).toBe(true);
  });

  it('reports a directory that does not exist', async () => {
    const path = join(dir, 'missing', 'v.sock');
    await expect(createVsockDevice({ cid: 3, socketPath: path })).rejects.toThrow(`directory ${join(dir, 'missing')} does not exist; create it first`);
  });

  it('close() also closes host clients still in their handshake', async () => {
    const path = join(dir, 'v.sock');
    const device = await create(path);
    const client = net.createConnection({ path });
    await new Promise((r) => client.once('connect', r));
    client.write('CONN');
    await new Promise((r) => setTimeout(r, 10));
    const closed = new Promise((r) => client.once('close', r));
    client.resume();
    await device.close();
    devices.length = 0;
    await closed;
  });
});
