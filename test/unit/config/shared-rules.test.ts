// The vsock socket path and the disk id follow one rule each
// (src/config/rules.ts), whether they come through the command line or
// straight into the device from a library caller.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { configFromOptions } from '../../../src/config.js';
import { ConfigError } from '../../../src/config/types.js';
import { diskIdProblem, MAX_VSOCK_SOCKET_PATH_BYTES, vsockSocketPathProblem } from '../../../src/config/rules.js';
import { BlockDeviceError, openBlockDevice } from '../../../src/devices/virtio/block/index.js';
import { VsockConfigError, VsockDevice } from '../../../src/devices/virtio/vsock/device.js';

const dir = mkdtempSync(join(tmpdir(), 'tsvmm-rules-'));
const kernel = join(dir, 'vmlinux');
const disk = join(dir, 'disk.img');
writeFileSync(kernel, 'not checked here');
writeFileSync(disk, Buffer.alloc(4096));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The message of what `action` throws, and that it is of class `type`. */
function thrown(action: () => unknown, type: abstract new (...args: never[]) => Error): string {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(type);
    return (error as Error).message;
  }
  throw new Error('nothing thrown');
}

describe('the vsock socket path rule', () => {
  // 96 bytes: "<path>_4294967295" is 107, the most sun_path holds before its NUL.
  const longest = join(dir, 'x'.repeat(MAX_VSOCK_SOCKET_PATH_BYTES - dir.length - 1));
  const tooLong = `${longest}y`;

  it('leaves room for the longest "_<port>" within sun_path (108 bytes with the NUL)', () => {
    expect(MAX_VSOCK_SOCKET_PATH_BYTES).toBe(96);
    expect(Buffer.byteLength(`${longest}_4294967295`) + 1).toBe(108);
    expect(vsockSocketPathProblem(longest)).toBeUndefined();
    expect(vsockSocketPathProblem(tooLong)).toMatch(/^socket path is 97 bytes, too long: at most 96 fit/);
    expect(vsockSocketPathProblem('é'.repeat(49))).toMatch(/^socket path is 98 bytes,/); // bytes, not characters
  });

  it('is applied with the same message by the config layer and by the device', async () => {
    const problem = vsockSocketPathProblem(tooLong)!;
    expect(thrown(() => configFromOptions({ kernel, vsock: [`cid=3,socket=${tooLong}`] }), ConfigError)).toBe(`--vsock: ${problem}`);
    await expect(VsockDevice.create({ cid: 3, socketPath: tooLong })).rejects.toThrow(new VsockConfigError(`vsock ${problem}`));
    expect(() => configFromOptions({ kernel, vsock: [`cid=3,socket=${longest}`] })).not.toThrow();
  });
});

describe('the disk id rule', () => {
  it.each([['root'], ['x'.repeat(20)], ['a b~!']])('accepts %j', (id) => {
    expect(diskIdProblem(id)).toBeUndefined();
  });

  it.each([[''], ['x'.repeat(21)], ['é'], ['tab\there'], ['nul\0']])('refuses %j', (id) => {
    expect(diskIdProblem(id)).toBe(`id "${id}" must be 1 to 20 printable ASCII characters (the virtio-blk serial)`);
  });

  it('is applied with the same message by the config layer and by the device', async () => {
    const id = 'disque-é';
    const problem = diskIdProblem(id)!;
    expect(thrown(() => configFromOptions({ kernel, disk: [`path=${disk},id=${id}`] }), ConfigError)).toBe(`--disk: ${problem}`);
    await expect(openBlockDevice({ path: disk, id })).rejects.toThrow(new BlockDeviceError(`disk ${problem}`));
    const device = await openBlockDevice({ path: disk, id: 'x'.repeat(20) });
    await device.close();
  });
});
