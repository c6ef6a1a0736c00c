// What the device warns about (TSVMM_DEBUG=1 prints it): truly unexpected
// packets, not the packets Linux sends for a socket after tsvmm closed it.
import { afterEach, describe, expect, it } from 'vitest';
import { Op, SHUTDOWN_BOTH, SHUTDOWN_SEND } from '../../../src/devices/virtio/vsock/packet.js';
import { HostListener, SocketRecorder, VsockTestGuest, hostConnect, waitFor } from '../../helpers/vsock-guest.js';

let guest: VsockTestGuest;
const listeners: HostListener[] = [];
const clients: SocketRecorder[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.socket.destroy();
  for (const l of listeners.splice(0)) await l.close();
  await guest.close();
});

/** A guest connection to host port `hostPort`, closed cleanly by the guest (SHUTDOWN both, our RST). */
async function guestConnectAndClose(listener: HostListener, guestPort: number, hostPort: number): Promise<void> {
  guest.send({ op: Op.Request, srcPort: guestPort, dstPort: hostPort });
  const response = await guest.nextPacket((p) => p.header.dstPort === guestPort);
  expect(response.header.op).toBe(Op.Response);
  guest.send({ op: Op.Rw, srcPort: guestPort, dstPort: hostPort }, Buffer.from('data'));
  guest.send({ op: Op.Shutdown, srcPort: guestPort, dstPort: hostPort, flags: SHUTDOWN_BOTH });
  const rst = await guest.nextPacket((p) => p.header.dstPort === guestPort);
  expect(rst.header.op).toBe(Op.Rst);
  await waitFor(() => listener.accepted.some((a) => a.ended && a.text === 'data'), 'the data at the host');
}

/** A host client to guest port `guestPort` that ends first; the guest then closes too. Returns the host port. */
async function hostConnectAndClose(guestPort: number): Promise<number> {
  const client = new SocketRecorder(await hostConnect(guest.socketPath, `CONNECT ${guestPort}\n`));
  clients.push(client);
  const request = await guest.nextPacket((p) => p.header.op === Op.Request && p.header.dstPort === guestPort);
  const hostPort = request.header.srcPort;
  guest.send({ op: Op.Response, srcPort: guestPort, dstPort: hostPort });
  await client.until(() => client.text.startsWith('OK '), 'the OK line');
  client.socket.end();
  const shutdown = await guest.nextPacket((p) => p.header.dstPort === guestPort);
  expect(shutdown.header).toMatchObject({ op: Op.Shutdown, flags: SHUTDOWN_SEND });
  guest.send({ op: Op.Shutdown, srcPort: guestPort, dstPort: hostPort, flags: SHUTDOWN_BOTH });
  const rst = await guest.nextPacket((p) => p.header.dstPort === guestPort);
  expect(rst.header.op).toBe(Op.Rst);
  return hostPort;
}

/** What Linux may still send for a socket whose RST it has not processed yet: answered with RST. */
async function sendLatePackets(guestPort: number, hostPort: number): Promise<void> {
  for (const late of [{ op: Op.CreditUpdate }, { op: Op.Shutdown, flags: SHUTDOWN_BOTH }]) {
    guest.send({ ...late, srcPort: guestPort, dstPort: hostPort });
    const answer = await guest.nextPacket((p) => p.header.dstPort === guestPort);
    expect(answer.header).toMatchObject({ op: Op.Rst, srcPort: hostPort });
  }
}

describe('warnings', () => {
  it('none for connections closed cleanly, even when Linux sends more packets after our RST', async () => {
    guest = await VsockTestGuest.start();
    const listener = await HostListener.open(`${guest.socketPath}_700`);
    listeners.push(listener);
    for (let i = 0; i < 20; i++) {
      await guestConnectAndClose(listener, 2000 + i, 700);
      await sendLatePackets(2000 + i, 700);
      const hostPort = await hostConnectAndClose(3000 + i);
      await sendLatePackets(3000 + i, hostPort);
    }
    expect(guest.device.connectionCount).toBe(0);
    expect(guest.warnings).toEqual([]);
  });

  it('still one for a packet to a connection that never existed', async () => {
    guest = await VsockTestGuest.start();
    guest.send({ op: Op.CreditUpdate, srcPort: 4000, dstPort: 800 });
    const rst = await guest.nextPacket((p) => p.header.dstPort === 4000);
    expect(rst.header.op).toBe(Op.Rst);
    expect(guest.warnings).toEqual(['answering guest CREDIT_UPDATE 4000 -> 2:800 with RST']);
  });

  it('remembers at most maxConnections closed connections: older ones warn again', async () => {
    guest = await VsockTestGuest.start({ device: { maxConnections: 4 } });
    const listener = await HostListener.open(`${guest.socketPath}_701`);
    listeners.push(listener);
    for (let i = 0; i < 5; i++) await guestConnectAndClose(listener, 5000 + i, 701);
    await sendLatePackets(5004, 701); // the latest: remembered
    expect(guest.warnings).toEqual([]);
    await sendLatePackets(5000, 701); // the first: forgotten
    expect(guest.warnings).toEqual([
      'answering guest CREDIT_UPDATE 5000 -> 2:701 with RST',
      'answering guest SHUTDOWN 5000 -> 2:701 with RST',
    ]);
  });
});
