// VsockHost.close() (and its signal): every listener, every connection and
// every connect under way ends, no socket file stays behind, and the
// process's open file descriptors are back where they were.
import { existsSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VsockAbortError, VsockHost, VsockListenError } from '../../../src/vsock-host/index.js';
import { waitFor } from '../../helpers/vsock-guest.js';
import { type VsockFixture, openFdCount, startVsockFixture } from './fixture.js';

const ECHO_PORT = 1234;
const SILENT_PORT = 7777;

let fixture: VsockFixture;

beforeEach(async () => {
  fixture = await startVsockFixture();
  fixture.sockets.listen(ECHO_PORT, { mode: 'echo' });
  fixture.sockets.listen(SILENT_PORT, { mode: 'ignore' });
});

afterEach(async () => {
  await fixture.close();
});

const pathFor = (port: number) => `${fixture.guest.socketPath}_${port}`;

describe('VsockHost.close', () => {
  it('closes listeners, connections both ways and connects under way: no socket file, no open fd', async () => {
    const baseline = openFdCount();
    const { vsock, sockets, guest } = fixture;
    await vsock.listen(6000, (socket) => socket.pipe(socket));
    await vsock.listen(6001, () => {}); // accepts and never answers
    const outgoing = await Promise.all([vsock.connect(ECHO_PORT), vsock.connect(ECHO_PORT), vsock.connect(ECHO_PORT)]);
    outgoing[0]!.write('a connection with bytes in flight');
    const incoming = await Promise.all([sockets.connect(6000), sockets.connect(6001)]);
    incoming[0]!.write(Buffer.from('from the guest'));
    const pending = vsock.connect(SILENT_PORT).catch((error: Error) => error);
    expect(guest.device.connectionCount).toBe(5);

    await vsock.close();

    expect(await pending).toBeInstanceOf(VsockAbortError);
    expect(outgoing.every((socket) => socket.destroyed)).toBe(true);
    expect(existsSync(pathFor(6000))).toBe(false);
    expect(existsSync(pathFor(6001))).toBe(false);
    // The guest sees the end of every stream and closes its sockets, as socat
    // would; the device then closes its ends of the host sockets.
    await Promise.all(incoming.map(async (socket) => {
      await socket.ended;
      socket.end();
      await socket.closed;
    }));
    await waitFor(() => guest.device.connectionCount === 0 && openFdCount() <= baseline, 'the device to close its sockets', 10_000);
    expect(openFdCount()).toBe(baseline);
  }, 30_000);

  it('is idempotent, and refuses new work afterwards', async () => {
    const { vsock } = fixture;
    await vsock.listen(6002, () => {});
    const first = vsock.close();
    expect(vsock.close()).toBe(first);
    await first;
    expect(vsock.closed).toBe(true);
    await expect(vsock.connect(ECHO_PORT)).rejects.toThrow(VsockAbortError);
    await expect(vsock.listen(6003, () => {})).rejects.toThrow(VsockListenError);
    expect(existsSync(pathFor(6003))).toBe(false);
  });

  it('a listener closed during setup by close() does not survive it', async () => {
    const listening = fixture.vsock.listen(6004, () => {}).catch((error: Error) => error);
    await fixture.vsock.close();
    expect(await listening).toBeInstanceOf(VsockListenError);
    expect(existsSync(pathFor(6004))).toBe(false);
  });
});

describe('the constructor\'s signal', () => {
  it('closes the VsockHost when it aborts', async () => {
    const controller = new AbortController();
    const vsock = new VsockHost(fixture.guest.socketPath, { signal: controller.signal });
    await vsock.listen(6010, () => {});
    const socket = await vsock.connect(ECHO_PORT);
    const closed = new Promise((resolve) => socket.once('close', resolve));
    controller.abort();
    expect(vsock.closed).toBe(true);
    await vsock.close();
    await closed;
    expect(existsSync(pathFor(6010))).toBe(false);
  });

  it('an already aborted signal gives a closed VsockHost', async () => {
    const vsock = new VsockHost(fixture.guest.socketPath, { signal: AbortSignal.abort() });
    expect(vsock.closed).toBe(true);
    await expect(vsock.connect(ECHO_PORT)).rejects.toThrow(VsockAbortError);
  });
});

describe('the constructor', () => {
  it('refuses a socket path too long for "_<port>" to fit a Unix socket address, in one line', () => {
    expect(() => new VsockHost(`/tmp/${'x'.repeat(120)}`)).toThrow(/too long/);
  });
});
