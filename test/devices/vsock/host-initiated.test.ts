// Host programs connecting to a guest port through the listening socket
// ("CONNECT <port>\n", then "OK <host port>\n" and a byte stream).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FIRST_HOST_PORT } from '../../../src/devices/virtio/vsock/port-allocator.js';
import { HOST_CID, Op, SHUTDOWN_SEND, VSOCK_TYPE_STREAM } from '../../../src/devices/virtio/vsock/packet.js';
import { GUEST_CID, SocketRecorder, VsockTestGuest, hostConnect, waitFor } from '../../helpers/vsock-guest.js';

let guest: VsockTestGuest;

beforeEach(async () => {
  guest = await VsockTestGuest.start();
});

afterEach(async () => {
  vi.useRealTimers();
  await guest.close();
});

/** Host connects to guest port `port`; the test guest accepts. Returns the client and the host port. */
async function establish(port: number, extra?: Buffer) {
  const client = new SocketRecorder(await hostConnect(guest.socketPath, `CONNECT ${port}\n`, extra));
  const request = await guest.nextPacket((p) => p.header.op === Op.Request && p.header.dstPort === port);
  const hostPort = request.header.srcPort;
  guest.send({ op: Op.Response, srcPort: port, dstPort: hostPort });
  await client.until(() => client.text.startsWith(`OK ${hostPort}\n`), 'the OK line');
  return { client, hostPort, request };
}

describe('host-initiated connections', () => {
  it('sends the guest a REQUEST from CID 2 and a host port from 2^30', async () => {
    await hostConnect(guest.socketPath, 'CONNECT 1234\n');
    const { header, payload } = await guest.nextPacket();
    expect(header).toEqual({
      srcCid: HOST_CID, dstCid: GUEST_CID, srcPort: FIRST_HOST_PORT, dstPort: 1234, len: 0,
      type: VSOCK_TYPE_STREAM, op: Op.Request, flags: 0, bufAlloc: 256 * 1024, fwdCnt: 0,
    });
    expect(payload.length).toBe(0);
    expect(guest.device.connectionCount).toBe(1);
  });

  it('answers "OK <host port>\\n" on RESPONSE, then relays both ways', async () => {
    const { client, hostPort } = await establish(52);
    expect(client.text).toBe(`OK ${hostPort}\n`);

    client.socket.write('ping from host');
    const rw = await guest.nextPacket((p) => p.header.op === Op.Rw);
    expect(rw.header).toMatchObject({ srcPort: hostPort, dstPort: 52, len: 14 });
    expect(rw.payload.toString()).toBe('ping from host');

    guest.send({ op: Op.Rw, srcPort: 52, dstPort: hostPort }, Buffer.from('pong from guest'));
    await client.until(() => client.text.endsWith('pong from guest'), 'guest data');
    expect(client.text).toBe(`OK ${hostPort}\npong from guest`);
  });

  it('keeps bytes written together with the CONNECT line, and a line split over several writes', async () => {
    const socket = await hostConnect(guest.socketPath, 'con');
    socket.write('NECT 7');
    await new Promise((r) => setTimeout(r, 5));
    socket.write('7\nfirst bytes|');
    socket.write('second write');
    const client = new SocketRecorder(socket);
    const request = await guest.nextPacket((p) => p.header.op === Op.Request);
    expect(request.header.dstPort).toBe(77);
    guest.send({ op: Op.Response, srcPort: 77, dstPort: request.header.srcPort });
    const { data } = await guest.receiveStream(77, request.header.srcPort, 'first bytes|second write'.length);
    expect(data.toString()).toBe('first bytes|second write');
    await client.until(() => client.text === `OK ${request.header.srcPort}\n`, 'the OK line');
  });

  it('gives each live connection its own host port', async () => {
    const a = await establish(10);
    const b = await establish(10);
    const c = await establish(11);
    expect(new Set([a.hostPort, b.hostPort, c.hostPort]).size).toBe(3);
    expect(guest.device.connectionCount).toBe(3);
  });

  it('closes the client when the guest answers RST (nobody listening)', async () => {
    const client = new SocketRecorder(await hostConnect(guest.socketPath, 'CONNECT 9999\n'));
    const request = await guest.nextPacket((p) => p.header.op === Op.Request);
    guest.send({ op: Op.Rst, srcPort: 9999, dstPort: request.header.srcPort });
    await client.until(() => client.gone, 'the client to be closed');
    expect(client.text).toBe('');
    expect(guest.device.connectionCount).toBe(0);
  });

  it('closes the client, and resets the guest side, when the guest does not answer within 2 s', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const client = new SocketRecorder(await hostConnect(guest.socketPath, 'CONNECT 5\n'));
    const request = await guest.nextPacket((p) => p.header.op === Op.Request);
    vi.advanceTimersByTime(1999);
    expect(client.gone).toBe(false);
    expect(guest.device.connectionCount).toBe(1);
    vi.advanceTimersByTime(1);
    vi.useRealTimers();
    await client.until(() => client.gone, 'the client to be closed');
    const rst = await guest.nextPacket((p) => p.header.op === Op.Rst);
    expect(rst.header).toMatchObject({ srcPort: request.header.srcPort, dstPort: 5 });
    expect(guest.device.connectionCount).toBe(0);
    // A late RESPONSE finds no connection and is answered with RST.
    guest.send({ op: Op.Response, srcPort: 5, dstPort: request.header.srcPort });
    const late = await guest.nextPacket((p) => p.header.op === Op.Rst);
    expect(late.header.dstPort).toBe(5);
  });

  it('sends no data to the guest before its RESPONSE', async () => {
    await hostConnect(guest.socketPath, 'CONNECT 8\n', Buffer.from('early'));
    await guest.nextPacket((p) => p.header.op === Op.Request);
    await new Promise((r) => setTimeout(r, 20));
    expect(guest.takeFor(8)).toEqual([]);
  });

  describe('bad CONNECT input closes that client only', () => {
    it.each([
      ['garbage', 'HELLO THERE\n'],
      ['no port', 'CONNECT\n'],
      ['a port over 2^32-1', 'CONNECT 4294967296\n'],
      ['no newline within 32 bytes', 'CONNECT 1' + '0'.repeat(40)],
    ])('%s', async (_, line) => {
      const good = await establish(60);
      const bad = new SocketRecorder(await hostConnect(guest.socketPath, line));
      await bad.until(() => bad.gone, 'the bad client to be closed');
      expect(bad.text).toBe('');
      // Nothing reached the guest, and the good connection still works.
      good.client.socket.write('still here');
      const rw = await guest.nextPacket((p) => p.header.op === Op.Rw);
      expect(rw.payload.toString()).toBe('still here');
      expect(guest.inbox.filter((p) => p.header.op === Op.Request)).toEqual([]);
      expect(guest.device.connectionCount).toBe(1);
      expect(guest.warnings.some((w) => w.includes('closing a host client'))).toBe(true);
    });

    it('a client that disconnects mid-handshake', async () => {
      const socket = await hostConnect(guest.socketPath, 'CONNE');
      socket.end();
      await waitFor(() => guest.warnings.some((w) => w.includes('before sending a complete CONNECT line')), 'the warning');
      socket.destroy();
      expect(guest.device.connectionCount).toBe(0);
      expect(guest.takeFor(0)).toEqual([]);
    });
  });

  it('relays the host\'s half-close as SHUTDOWN SEND after the data', async () => {
    const { client, hostPort } = await establish(70);
    client.socket.end('last words');
    const rw = await guest.nextPacket((p) => p.header.op === Op.Rw);
    expect(rw.payload.toString()).toBe('last words');
    const shutdown = await guest.nextPacket((p) => p.header.op === Op.Shutdown);
    expect(shutdown.header).toMatchObject({ srcPort: hostPort, dstPort: 70, flags: SHUTDOWN_SEND });
    // The guest can still answer, then shuts down too: both directions done.
    guest.send({ op: Op.Rw, srcPort: 70, dstPort: hostPort }, Buffer.from('reply'));
    guest.send({ op: Op.Shutdown, srcPort: 70, dstPort: hostPort, flags: SHUTDOWN_SEND });
    await client.until(() => client.ended, 'the client to see EOF');
    expect(client.text).toBe(`OK ${hostPort}\nreply`);
    const rst = await guest.nextPacket((p) => p.header.op === Op.Rst);
    expect(rst.header.dstPort).toBe(70);
    expect(guest.device.connectionCount).toBe(0);
  });
});
