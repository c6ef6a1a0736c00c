// Closing, resetting and limits: half-close, linger, peer death, device
// reset, the connection limit, many connections at once.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Op, SHUTDOWN_BOTH, SHUTDOWN_RCV, SHUTDOWN_SEND } from '../../../src/devices/virtio/vsock/packet.js';
import { VSOCK_DEFAULTS } from '../../../src/devices/virtio/vsock/device.js';
import { GuestStream, HostListener, SocketRecorder, VsockTestGuest, hostConnect, waitFor } from '../../helpers/vsock-guest.js';

let guest: VsockTestGuest;
const listeners: HostListener[] = [];
const clients: SocketRecorder[] = [];

afterEach(async () => {
  vi.useRealTimers();
  for (const c of clients.splice(0)) c.socket.destroy();
  for (const l of listeners.splice(0)) await l.close();
  await guest.close();
});

/** A host client connected to guest port `port` and accepted by the guest. */
async function hostInitiated(port: number) {
  const client = new SocketRecorder(await hostConnect(guest.socketPath, `CONNECT ${port}\n`));
  clients.push(client);
  const request = await guest.nextPacket((p) => p.header.op === Op.Request && p.header.dstPort === port);
  const stream = new GuestStream(guest, port, request.header.srcPort);
  guest.send(stream.header(Op.Response));
  await client.until(() => client.text.startsWith('OK '), 'the OK line');
  client.chunks.length = 0;
  return { client, stream };
}

async function guestInitiated(guestPort: number, hostPort: number) {
  let listener = listeners.find((l) => l.path.endsWith(`_${hostPort}`));
  if (!listener) {
    listener = await HostListener.open(`${guest.socketPath}_${hostPort}`);
    listeners.push(listener);
  }
  const before = listener.accepted.length;
  guest.send({ op: Op.Request, srcPort: guestPort, dstPort: hostPort });
  const response = await guest.nextPacket((p) => p.header.dstPort === guestPort);
  expect(response.header.op).toBe(Op.Response);
  await waitFor(() => listener!.accepted.length > before, 'the host to accept');
  const stream = new GuestStream(guest, guestPort, hostPort);
  stream.handle(response);
  return { host: listener.accepted[before]!, stream };
}

describe('closing', () => {
  it('a guest close (SHUTDOWN both) is answered with RST at once, after its data reached the host', async () => {
    guest = await VsockTestGuest.start();
    const { host, stream } = await guestInitiated(200, 700);
    guest.send(stream.header(Op.Rw), Buffer.from('bye'));
    guest.send(stream.header(Op.Shutdown, SHUTDOWN_BOTH));
    const rst = await guest.nextPacket((p) => p.header.dstPort === 200);
    expect(rst.header.op).toBe(Op.Rst);
    expect(guest.device.connectionCount).toBe(0);
    await host.until(() => host.ended, 'EOF at the host');
    expect(host.text).toBe('bye');
  });

  it('guest SHUTDOWN RCV: host data is dropped, the guest can still send', async () => {
    guest = await VsockTestGuest.start();
    const { client, stream } = await hostInitiated(201);
    guest.send(stream.header(Op.Shutdown, SHUTDOWN_RCV));
    await new Promise((r) => setTimeout(r, 10));
    client.socket.write('nobody reads this');
    await new Promise((r) => setTimeout(r, 20));
    expect(guest.takeFor(201)).toEqual([]);
    guest.send(stream.header(Op.Rw), Buffer.from('but I talk'));
    await client.until(() => client.text === 'but I talk', 'guest data');
    expect(guest.device.connectionCount).toBe(1);
  });

  it('a closing connection waits 2 s (the default linger) for the guest\'s RST, then sends its own', async () => {
    expect(VSOCK_DEFAULTS.lingerTimeoutMs).toBe(2000);
    guest = await VsockTestGuest.start();
    const { host, stream } = await guestInitiated(202, 702);
    guest.send(stream.header(Op.Shutdown, SHUTDOWN_SEND));
    await host.until(() => host.ended, 'EOF at the host');
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    host.socket.end();
    const shutdown = await guest.nextPacket((p) => p.header.dstPort === 202);
    expect(shutdown.header).toMatchObject({ op: Op.Shutdown, flags: SHUTDOWN_BOTH });
    vi.advanceTimersByTime(1999);
    expect(guest.device.connectionCount).toBe(1);
    vi.advanceTimersByTime(1);
    const rst = await guest.nextPacket((p) => p.header.dstPort === 202);
    expect(rst.header.op).toBe(Op.Rst);
    expect(guest.device.connectionCount).toBe(0);
  });

  it('a guest that posts no rx buffer cannot hold a finished connection: lingerMs after both directions are done its slot is free', async () => {
    guest = await VsockTestGuest.start({ autoRefill: false, device: { lingerTimeoutMs: 100 } });
    guest.refillRx(1); // for the RESPONSE; none after it
    const { host, stream } = await guestInitiated(206, 706);
    guest.send(stream.header(Op.Shutdown, SHUTDOWN_SEND));
    await host.until(() => host.ended, 'EOF at the host');
    host.socket.end(); // both directions done: SHUTDOWN both owed, with no rx buffer to take it
    await waitFor(() => guest.device.connectionCount === 0, 'the connection to end', 2000);
    await host.until(() => host.gone, 'the host socket to close');
    expect(guest.takeFor(206)).toEqual([]);
    // The SHUTDOWN was dropped with the connection; its RST waits at the muxer for the next rx buffer.
    guest.refillRx(1);
    const rst = await guest.nextPacket((p) => p.header.dstPort === 206);
    expect(rst.header).toMatchObject({ op: Op.Rst, srcPort: 706 });
    expect(guest.takeFor(206)).toEqual([]);
  });

  it('a host peer that dies mid-transfer (ECONNRESET) resets that connection only', async () => {
    guest = await VsockTestGuest.start();
    // A host program that never reads: guest data stays in its socket's receive queue,
    // and a Unix socket closed with unread data resets its peer.
    const listener = await HostListener.open(`${guest.socketPath}_703`, { pauseOnConnect: true });
    listeners.push(listener);
    const a = await guestInitiated(203, 703);
    const b = await hostInitiated(204);
    guest.send(a.stream.header(Op.Rw), Buffer.from('never read'));
    await new Promise((r) => setTimeout(r, 20));
    a.host.socket.destroy();
    const rst = await guest.nextPacket((p) => p.header.dstPort === 203);
    expect(rst.header).toMatchObject({ op: Op.Rst, srcPort: 703 });
    b.client.socket.write('b lives');
    expect((await b.stream.read(7)).toString()).toBe('b lives');
    expect(guest.device.connectionCount).toBe(1);
  });

  it('a guest write to a host peer that went away (EPIPE) resets that connection', async () => {
    guest = await VsockTestGuest.start();
    const { host, stream } = await guestInitiated(205, 705);
    host.socket.destroy();
    // The device sees EOF and tells the guest the host will not send any more.
    const shutdown = await guest.nextPacket((p) => p.header.dstPort === 205);
    expect(shutdown.header).toMatchObject({ op: Op.Shutdown, flags: SHUTDOWN_SEND });
    guest.send(stream.header(Op.Rw), Buffer.alloc(1000, 1));
    const rst = await guest.nextPacket((p) => p.header.dstPort === 205);
    expect(rst.header.op).toBe(Op.Rst);
    expect(guest.device.connectionCount).toBe(0);
  });
});

describe('device reset and limits', () => {
  it('a device reset closes every host socket; the device works again after re-initialization', async () => {
    guest = await VsockTestGuest.start();
    const a = await hostInitiated(300);
    const b = await guestInitiated(301, 801);
    expect(guest.device.connectionCount).toBe(2);
    guest.driver.reset();
    expect(guest.device.connectionCount).toBe(0);
    await a.client.until(() => a.client.gone, 'the host-initiated client to close');
    await b.host.until(() => b.host.gone, 'the guest-initiated host socket to close');

    guest.driver.initialize();
    guest.inbox.length = 0;
    guest.refillRx();
    const again = await hostInitiated(300);
    again.client.socket.write('after reset');
    expect((await again.stream.read(11)).toString()).toBe('after reset');
  });

  it('refuses a host client at once while the guest driver is not running', async () => {
    guest = await VsockTestGuest.start();
    guest.driver.reset();
    const client = new SocketRecorder(await hostConnect(guest.socketPath, 'CONNECT 5\n'));
    clients.push(client);
    await client.until(() => client.gone, 'the client to close');
    expect(guest.warnings.join('\n')).toContain('not running');
  });

  it('sends VIRTIO_VSOCK_EVENT_TRANSPORT_RESET on the event queue when asked, dropping connections', async () => {
    guest = await VsockTestGuest.start();
    const a = await hostInitiated(310);
    expect(guest.device.sendTransportReset()).toBe(false); // no event buffer posted yet
    guest.driver.queue(2).addBuffer([{ writable: 4 }]);
    guest.driver.queue(2).kick();
    guest.driver.memory.fill(0, 0); // no-op; the buffer is zeroed already
    expect(guest.device.sendTransportReset()).toBe(true);
    const [event] = guest.driver.queue(2).takeUsed();
    expect(event!.length).toBe(4);
    expect([...event!.bytes]).toEqual([0, 0, 0, 0]); // id 0 = TRANSPORT_RESET
    expect(guest.device.connectionCount).toBe(0);
    await a.client.until(() => a.client.gone, 'the client to close');
  });

  it('allows 1023 live connections by default and refuses the next at once, others unaffected', async () => {
    expect(VSOCK_DEFAULTS.maxConnections).toBe(1023);
    guest = await VsockTestGuest.start({ rxBuffers: 128 });
    const listener = await HostListener.open(`${guest.socketPath}_900`);
    listeners.push(listener);
    for (let port = 0; port < 1023; port++) {
      guest.send({ op: Op.Request, srcPort: 10_000 + port, dstPort: 900 });
      if (port % 64 === 63) await waitFor(() => { guest.pump(); return guest.device.connectionCount === port + 1; }, 'connections');
    }
    let responses = 0;
    await waitFor(() => {
      guest.pump();
      responses += guest.inbox.filter((p) => p.header.op === Op.Response).length;
      guest.inbox.length = 0;
      return responses === 1023;
    }, '1023 RESPONSEs', 60_000);
    expect(guest.device.connectionCount).toBe(1023);

    // The 1024th, from the guest: RST at once.
    guest.send({ op: Op.Request, srcPort: 20_000, dstPort: 900 });
    const refused = await guest.nextPacket((p) => p.header.dstPort === 20_000);
    expect(refused.header.op).toBe(Op.Rst);
    // ... and from the host: closed at once, no REQUEST to the guest.
    const client = new SocketRecorder(await hostConnect(guest.socketPath, 'CONNECT 1\n'));
    clients.push(client);
    await client.until(() => client.gone, 'the 1024th host client to close');
    expect(guest.inbox.filter((p) => p.header.op === Op.Request)).toEqual([]);

    // The others still work; closing one frees a slot.
    await waitFor(() => listener.accepted.length === 1023, 'all accepted');
    listener.accepted[500]!.socket.write('alive');
    const data = await guest.nextPacket((p) => p.header.dstPort === 10_500);
    expect(data.payload.toString()).toBe('alive');
    guest.send({ op: Op.Rst, srcPort: 10_000, dstPort: 900 });
    await waitFor(() => guest.device.connectionCount === 1022, 'the slot to free');
    guest.send({ op: Op.Request, srcPort: 20_001, dstPort: 900 });
    const accepted = await guest.nextPacket((p) => p.header.dstPort === 20_001);
    expect(accepted.header.op).toBe(Op.Response);
  }, 120_000);

  it('carries many connections at once, both ways, without mixing their bytes', async () => {
    guest = await VsockTestGuest.start({ rxBuffers: 128 });
    const streams = [];
    for (let i = 0; i < 40; i++) streams.push(await hostInitiated(1000 + i));
    const size = 50_000;
    const payload = (i: number) => Buffer.alloc(size, i + 1);
    streams.forEach((s, i) => s.client.socket.write(payload(i)));
    await Promise.all(streams.map(async (s, i) => {
      const sent = await s.stream.write(Buffer.alloc(size, 200 - i), { chunk: 8192 });
      expect(sent).toBe(size);
    }));
    for (const [i, s] of streams.entries()) {
      expect((await s.stream.read(size)).equals(payload(i))).toBe(true);
      await s.client.until(() => s.client.data.length === size, 'guest data at the host');
      expect(s.client.data.equals(Buffer.alloc(size, 200 - i))).toBe(true);
    }
  });
});

describe('host data still owed when the host socket closes', () => {
  it('is delivered, then SHUTDOWN both, even when the socket closed cleanly meanwhile', async () => {
    guest = await VsockTestGuest.start({ autoRefill: false });
    guest.refillRx(4);
    const { host, stream } = await guestInitiated(400, 710);
    guest.send(stream.header(Op.Shutdown, SHUTDOWN_SEND)); // guest -> host done: we end() our side
    await host.until(() => host.ended, 'EOF at the host');
    // The guest posts no rx buffers while the host sends its last bytes and closes.
    guest.pump();
    const data = Buffer.alloc(10_000, 0x42);
    host.socket.end(data);
    await host.until(() => host.closed, 'the host socket to close');
    await new Promise((r) => setTimeout(r, 20));
    expect(guest.device.connectionCount).toBe(1);
    guest.autoRefill = true;
    guest.refillRx();
    expect((await stream.read(data.length)).equals(data)).toBe(true);
    await waitFor(() => { stream.absorb(); return stream.control.length > 0; }, 'a control packet');
    expect(stream.control.map((p) => p.header)).toMatchObject([{ op: Op.Response }, { op: Op.Shutdown, flags: SHUTDOWN_BOTH }]);
    guest.send(stream.header(Op.Rst));
    await waitFor(() => guest.device.connectionCount === 0, 'the connection to go');
  });
});
