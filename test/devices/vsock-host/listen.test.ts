// VsockHost.listen: the guest connects to CID 2 port P and the real vsock
// device connects to "<socket>_P", which the listener owns.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/config/types.js';
import { VsockListenError } from '../../../src/vsock-host/index.js';
import { sha256 } from '../../helpers/vsock-host.js';
import { type VsockFixture, startVsockFixture } from './fixture.js';

let fixture: VsockFixture;

beforeEach(async () => {
  fixture = await startVsockFixture();
});

afterEach(async () => {
  await fixture.close();
});

const pathFor = (port: number) => `${fixture.guest.socketPath}_${port}`;

/** The guest connects to host port `port`, sends `data`, shuts its side and collects the answer until the host's end. */
async function guestExchange(port: number, data: Buffer): Promise<Buffer> {
  const socket = await fixture.sockets.connect(port);
  socket.write(data);
  socket.end();
  await socket.closed;
  return socket.data;
}

describe('listen', () => {
  it('serves 8 concurrent guest connections with one listener (1 MiB random echo each)', async () => {
    const server = await fixture.vsock.listen(5000, (socket) => socket.pipe(socket));
    expect(server).toMatchObject({ port: 5000, path: pathFor(5000) });
    expect(lstatSync(pathFor(5000)).isSocket()).toBe(true);
    const payloads = Array.from({ length: 8 }, () => randomBytes(1 << 20));
    const echoed = await Promise.all(payloads.map((payload) => guestExchange(5000, payload)));
    expect(echoed.map(sha256)).toEqual(payloads.map(sha256));
  }, 60_000);

  it('listens on several ports at once, each with its own handler', async () => {
    await fixture.vsock.listen(5001, (socket) => socket.end('port 5001 here'));
    await fixture.vsock.listen(5002, (socket) => socket.end('port 5002 here'));
    const [a, b] = await Promise.all([guestExchange(5001, Buffer.alloc(0)), guestExchange(5002, Buffer.alloc(0))]);
    expect([a.toString(), b.toString()]).toEqual(['port 5001 here', 'port 5002 here']);
  });

  it('removes the socket file on close(), after which the guest is refused', async () => {
    const server = await fixture.vsock.listen(5003, (socket) => socket.end('hi'));
    await server.close();
    expect(existsSync(pathFor(5003))).toBe(false);
    await expect(fixture.sockets.connect(5003)).rejects.toThrow(/reset/);
  });

  it('replaces a stale socket file (left by a process that died)', async () => {
    spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(pathFor(5004))}, () => process.exit(0))`]);
    expect(lstatSync(pathFor(5004)).isSocket()).toBe(true);
    await fixture.vsock.listen(5004, (socket) => socket.end('fresh'));
    expect((await guestExchange(5004, Buffer.alloc(0))).toString()).toBe('fresh');
  });

  it('refuses a path that is not a socket, and leaves the file alone', async () => {
    writeFileSync(pathFor(5005), 'precious');
    const error = await fixture.vsock.listen(5005, () => {}).catch((e: Error) => e);
    expect(error).toBeInstanceOf(VsockListenError);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain('is not a Unix socket');
    expect((error as Error).message).not.toContain('\n');
    expect(readFileSync(pathFor(5005), 'utf8')).toBe('precious');
  });

  it('refuses a socket another process listens on, which keeps working', async () => {
    const other = net.createServer((socket) => {
      socket.on('error', () => {}); // our probe connects and leaves at once
      socket.end('the other one');
    });
    await new Promise<void>((resolve) => other.listen(pathFor(5006), resolve));
    try {
      await expect(fixture.vsock.listen(5006, () => {})).rejects.toThrow(/another process listens there/);
      expect((await guestExchange(5006, Buffer.alloc(0))).toString()).toBe('the other one');
    } finally {
      await new Promise((resolve) => other.close(resolve));
    }
  });

  it('refuses a second listener on the same port of the same VsockHost, without disturbing the first', async () => {
    const connections: number[] = [];
    await fixture.vsock.listen(5007, (socket) => { connections.push(1); socket.end('first'); });
    await expect(fixture.vsock.listen(5007, () => {})).rejects.toThrow(VsockListenError);
    expect(connections).toEqual([]);
    expect((await guestExchange(5007, Buffer.alloc(0))).toString()).toBe('first');
  });

  it('refuses a port that is not a u32', async () => {
    await expect(fixture.vsock.listen(-1, () => {})).rejects.toThrow(RangeError);
    await expect(fixture.vsock.listen(2 ** 32, () => {})).rejects.toThrow(RangeError);
  });

  it('can listen on a port again after closing it', async () => {
    const first = await fixture.vsock.listen(5008, (socket) => socket.end('one'));
    await first.close();
    await fixture.vsock.listen(5008, (socket) => socket.end('two'));
    expect((await guestExchange(5008, Buffer.alloc(0))).toString()).toBe('two');
  });
});
