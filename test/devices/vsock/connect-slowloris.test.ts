// Host clients that connect to the vsock socket and never finish their
// "CONNECT <port>\n" line (a slowloris): they get a deadline, and they never
// take the slots of real connections.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { VSOCK_DEFAULTS } from '../../../src/devices/virtio/vsock/device.js';
import { Op } from '../../../src/devices/virtio/vsock/packet.js';
import { SocketRecorder, VsockTestGuest, hostConnect, waitFor } from '../../helpers/vsock-guest.js';

let guest: VsockTestGuest;
const clients: SocketRecorder[] = [];

afterEach(async () => {
  vi.useRealTimers();
  for (const c of clients.splice(0)) c.socket.destroy();
  await guest.close();
});

/**
 * Lets the event loop go round `count` times: two turns put a full poll phase
 * between now and the return, so bytes written to a local Unix socket before
 * have been read on the other end.
 */
async function loopTurns(count = 2): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
}

async function idleClient(line = ''): Promise<SocketRecorder> {
  const client = new SocketRecorder(await hostConnect(guest.socketPath, line));
  clients.push(client);
  return client;
}

/** The soft RLIMIT_NOFILE of this process (Node raises it to the hard limit at start-up). */
function openFileLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  const soft = line?.split(/\s{2,}/)[1];
  return soft === undefined || soft === 'unlimited' ? Infinity : Number(soft);
}

describe('host clients that never finish their CONNECT line', () => {
  it('are closed 10 s (the default) after their accept', async () => {
    expect(VSOCK_DEFAULTS.connectLineTimeoutMs).toBe(10_000);
    guest = await VsockTestGuest.start();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const silent = await idleClient();
    await waitFor(() => guest.device.pendingHostClientCount === 1, 'the accept');
    vi.advanceTimersByTime(9_999);
    await loopTurns();
    expect(silent.gone).toBe(false);
    vi.advanceTimersByTime(1);
    await silent.until(() => silent.gone, 'the silent client to be closed');
    expect(guest.device.pendingHostClientCount).toBe(0);
    expect(guest.warnings).toContain('closing a host client: no complete CONNECT line within 10000 ms');
  });

  it('counts from the accept, so trickling bytes does not extend the deadline', async () => {
    guest = await VsockTestGuest.start();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const trickler = await idleClient('C');
    await waitFor(() => guest.device.pendingHostClientCount === 1, 'the accept');
    for (const piece of ['O', 'N', 'N', 'E', 'C', 'T', ' ', '1']) {
      vi.advanceTimersByTime(1_000);
      trickler.socket.write(piece);
      await loopTurns();
    }
    vi.advanceTimersByTime(1_999);
    await loopTurns();
    expect(trickler.gone).toBe(false);
    vi.advanceTimersByTime(1);
    await trickler.until(() => trickler.gone, 'the trickling client to be closed');
    expect(guest.inbox.filter((p) => p.header.op === Op.Request)).toEqual([]);
  });

  it('do not disturb a client that finished its line in time', async () => {
    guest = await VsockTestGuest.start();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const client = await idleClient('CONNECT 52\n');
    const request = await guest.nextPacket((p) => p.header.op === Op.Request);
    guest.send({ op: Op.Response, srcPort: 52, dstPort: request.header.srcPort });
    await client.until(() => client.text.startsWith('OK '), 'the OK line');
    vi.advanceTimersByTime(60_000);
    await loopTurns();
    expect(client.gone).toBe(false);
    client.socket.write('still served');
    const rw = await guest.nextPacket((p) => p.header.op === Op.Rw);
    expect(rw.payload.toString()).toBe('still served');
  });

  it('past maxPendingClients, the oldest waiting client is closed to make room', async () => {
    guest = await VsockTestGuest.start({ device: { maxPendingClients: 3 } });
    const idle = [await idleClient(), await idleClient(), await idleClient()];
    await waitFor(() => guest.device.pendingHostClientCount === 3, 'three waiting clients');
    const real = await idleClient('CONNECT 7\n');
    await idle[0]!.until(() => idle[0]!.gone, 'the oldest idle client to be closed');
    const request = await guest.nextPacket((p) => p.header.op === Op.Request);
    expect(request.header.dstPort).toBe(7);
    guest.send({ op: Op.Response, srcPort: 7, dstPort: request.header.srcPort });
    await real.until(() => real.text === `OK ${request.header.srcPort}\n`, 'the OK line');
    expect(idle.map((c) => c.gone)).toEqual([true, false, false]);
    expect(guest.device.pendingHostClientCount).toBe(2);
    expect(guest.warnings).toContain('closing the oldest host client still without a CONNECT line: 3 are waiting');
  });

  // Both ends of each idle client live in this process: 2 fds apiece.
  const idleCount = VSOCK_DEFAULTS.maxConnections;
  const fdsNeeded = 2 * idleCount + 256;
  it.skipIf(openFileLimit() < fdsNeeded)(
    `real clients are served while ${idleCount} idle ones are connected (needs ulimit -n >= ${fdsNeeded})`,
    async () => {
      // A deadline far beyond the test: only the limits are under test here, not the clock.
      guest = await VsockTestGuest.start({ device: { connectLineTimeoutMs: 600_000 } });
      for (let i = 0; i < idleCount; i++) {
        await idleClient(i % 2 === 0 ? '' : 'CONNECT 1'); // silent, or stuck mid-line
        // Wait for the accepts now and then: the listen backlog is smaller than the burst.
        if (i % 128 === 127) await waitFor(() => guest.device.pendingHostClientCount === i + 1, 'the accepts');
      }
      await waitFor(() => guest.device.pendingHostClientCount === idleCount, `${idleCount} waiting clients`);
      expect(guest.device.connectionCount).toBe(0);

      // Real clients in a row are served. The first finds the waiting room full and
      // costs the oldest idle client its place; once it has sent its line it no
      // longer waits, so the next finds room.
      for (const port of [52, 53]) {
        const real = await idleClient(`CONNECT ${port}\nhello ${port}`);
        const request = await guest.nextPacket((p) => p.header.op === Op.Request && p.header.dstPort === port);
        guest.send({ op: Op.Response, srcPort: port, dstPort: request.header.srcPort });
        const rw = await guest.nextPacket((p) => p.header.op === Op.Rw && p.header.dstPort === port);
        expect(rw.payload.toString()).toBe(`hello ${port}`);
        await real.until(() => real.text === `OK ${request.header.srcPort}\n`, 'the OK line');
      }
      await clients[0]!.until(() => clients[0]!.gone, 'the oldest idle client to be closed');
      expect(clients.slice(1, idleCount).filter((c) => c.gone)).toEqual([]);
      expect(guest.device.connectionCount).toBe(2);
      expect(guest.device.pendingHostClientCount).toBe(idleCount - 1);
    },
    60_000,
  );
});
