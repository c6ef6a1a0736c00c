// Host programs that misbehave on the vsock Unix socket: Cloud Hypervisor's
// table of bad CONNECT lines sent over a real socket, and connection churn
// after which every file descriptor is given back.
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Op, SHUTDOWN_BOTH } from '../../../src/devices/virtio/vsock/packet.js';
import { SocketRecorder, VsockTestGuest, hostConnect, waitFor } from '../../helpers/vsock-guest.js';

let guest: VsockTestGuest;
const clients: SocketRecorder[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.socket.destroy();
  await guest.close();
});

describe('bad CONNECT lines over the real socket (Cloud Hypervisor\'s table)', () => {
  it.each([
    ['nothing at all', Buffer.alloc(0)],
    ['a cut-off keyword', Buffer.from('CONN\n')],
    ['a blank port', Buffer.from('connect \n')],
    ['a negative port', Buffer.from('connect -1337\n')],
    ['a port of 2^33', Buffer.from('connect 8589934592\n')],
    ['a port in non-ASCII digits', Buffer.from('connect \u0661\u0662\n', 'utf8')],
    ['32 bytes without a newline', Buffer.from('connect 123456789012345678901234')],
  ])('%s: that client is closed, nothing reaches the guest, others carry on', async (_, line) => {
    guest = await VsockTestGuest.start();
    const good = new SocketRecorder(await hostConnect(guest.socketPath, 'CONNECT 60\n'));
    clients.push(good);
    const request = await guest.nextPacket((p) => p.header.op === Op.Request);
    guest.send({ op: Op.Response, srcPort: 60, dstPort: request.header.srcPort });
    await good.until(() => good.text.startsWith('OK '), 'the OK line');

    const bad = new SocketRecorder(await hostConnect(guest.socketPath, line));
    clients.push(bad);
    // With nothing sent, the client must end its side to be told apart from a slow one.
    if (line.length === 0) bad.socket.end();
    expect(line.length).toBeLessThanOrEqual(32);
    await bad.until(() => bad.gone, 'the bad client to be closed');
    expect(bad.text).toBe('');
    expect(guest.device.pendingHostClientCount).toBe(0);

    good.socket.write('still here');
    const rw = await guest.nextPacket((p) => p.header.op === Op.Rw);
    expect(rw.payload.toString()).toBe('still here');
    expect(guest.inbox.filter((p) => p.header.op === Op.Request)).toEqual([]);
    expect(guest.device.connectionCount).toBe(1);
  });
});

/** Open file descriptors of this process. */
function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/**
 * Plays a guest that accepts every connection and closes its side when the
 * host does, polling the queues on every turn of the event loop until stopped.
 */
function startResponder(): { stop(): void } {
  let running = true;
  const tick = (): void => {
    if (!running) return;
    guest.pump();
    for (const { header } of guest.inbox.splice(0)) {
      const back = { srcPort: header.dstPort, dstPort: header.srcPort };
      if (header.op === Op.Request) guest.send({ op: Op.Response, ...back });
      else if (header.op === Op.Shutdown) guest.send({ op: Op.Shutdown, flags: SHUTDOWN_BOTH, ...back });
    }
    setImmediate(tick);
  };
  tick();
  return { stop: () => { running = false; } };
}

type Cycle = 'full' | 'silent' | 'partial' | 'garbage' | 'abort-before-accept';
const CYCLES: readonly Cycle[] = ['full', 'silent', 'partial', 'garbage', 'abort-before-accept'];

/** One host client going through `kind`; resolves once its socket has closed. */
function cycle(kind: Cycle, guestPort: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path: guest.socketPath });
    let received = '';
    socket.on('error', (error) => {
      // A reset from the device is one of the expected endings; anything else is not.
      if ((error as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(error);
    });
    socket.on('close', () => resolve());
    socket.on('connect', () => {
      switch (kind) {
        case 'full': socket.write(`CONNECT ${guestPort}\n`); break;
        case 'silent': socket.destroy(); break;
        case 'partial': socket.write('CONNE', () => socket.destroy()); break;
        case 'garbage': socket.write('GET / HTTP/1.0\r\n'); break;
        case 'abort-before-accept': socket.write(`CONNECT ${guestPort}\n`, () => socket.destroy()); break;
      }
    });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      // Accepted: close our side; the device tells the guest, which closes too.
      if (kind === 'full' && received.endsWith('\n')) socket.end();
    });
  });
}

describe('connection churn', () => {
  it('10,000 connect/close cycles on the real socket leave no file descriptor behind', async () => {
    guest = await VsockTestGuest.start({ rxBuffers: 128 });
    const responder = startResponder();
    try {
      // Warm up first: the first sockets create process-wide state lazily.
      await Promise.all(CYCLES.map((kind, i) => cycle(kind, 100 + i)));
      await waitFor(() => guest.device.connectionCount === 0 && guest.device.pendingHostClientCount === 0, 'the warm-up to finish');
      const baseline = openFdCount();

      const total = 10_000;
      const concurrency = 50;
      let started = 0;
      const worker = async (): Promise<void> => {
        while (started < total) {
          const n = started++;
          await cycle(CYCLES[n % CYCLES.length]!, 1000 + (n % 500));
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));

      // Every client socket has closed; the device lets go of its ends as the guest answers.
      await waitFor(() => guest.device.connectionCount === 0 && guest.device.pendingHostClientCount === 0,
        'every connection to end', 30_000);
      // The device's ends close in libuv's close callbacks, a loop turn or two later.
      await waitFor(() => openFdCount() === baseline, `the fd count to return to ${baseline}`, 10_000)
        .catch(() => { throw new Error(`open fds: ${openFdCount()} after churn, ${baseline} before`); });
      expect(openFdCount()).toBe(baseline);
    } finally {
      responder.stop();
    }
  }, 120_000);
});
