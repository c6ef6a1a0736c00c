// The guest connecting to host port P: tsvmm connects to "<socket>_P".
import { spawn, spawnSync } from 'node:child_process';
import { lstatSync } from 'node:fs';
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HEADER_SIZE, HOST_CID, Op, SHUTDOWN_BOTH, SHUTDOWN_SEND, VSOCK_TYPE_STREAM, encodeHeader } from '../../../src/devices/virtio/vsock/packet.js';
import { GUEST_CID, HostListener, SocketRecorder, VsockTestGuest, type TxLayout } from '../../helpers/vsock-guest.js';

let guest: VsockTestGuest;
const listeners: HostListener[] = [];

beforeEach(async () => {
  guest = await VsockTestGuest.start();
});

afterEach(async () => {
  for (const l of listeners.splice(0)) await l.close();
  await guest.close();
});

async function listen(port: number, options?: { pauseOnConnect?: boolean }): Promise<HostListener> {
  const listener = await HostListener.open(`${guest.socketPath}_${port}`, options);
  listeners.push(listener);
  return listener;
}

/** The guest connects from `guestPort` to host port `hostPort`; returns the host side of it. */
async function connect(guestPort: number, hostPort: number, listener: HostListener) {
  const before = listener.accepted.length;
  guest.send({ op: Op.Request, srcPort: guestPort, dstPort: hostPort });
  const response = await guest.nextPacket((p) => p.header.dstPort === guestPort);
  expect(response.header.op).toBe(Op.Response);
  await new Promise((r) => setTimeout(r, 1));
  expect(listener.accepted.length).toBe(before + 1);
  return { host: listener.accepted[before]!, response };
}

describe('guest-initiated connections', () => {
  it('connects to <socket>_<port> and answers RESPONSE with our credit', async () => {
    const listener = await listen(1234);
    const { response } = await connect(40000, 1234, listener);
    expect(response.header).toEqual({
      srcCid: HOST_CID, dstCid: GUEST_CID, srcPort: 1234, dstPort: 40000, len: 0,
      type: VSOCK_TYPE_STREAM, op: Op.Response, flags: 0, bufAlloc: 256 * 1024, fwdCnt: 0,
    });
    expect(guest.device.connectionCount).toBe(1);
  });

  it('answers RST at once when nothing listens there', async () => {
    guest.send({ op: Op.Request, srcPort: 40001, dstPort: 4321 });
    const rst = await guest.nextPacket();
    expect(rst.header).toMatchObject({ op: Op.Rst, srcPort: 4321, dstPort: 40001, srcCid: HOST_CID, dstCid: GUEST_CID });
    expect(guest.device.connectionCount).toBe(0);
    expect(guest.warnings.join('\n')).toContain('ENOENT');
  });

  it('answers RST when the path is a dead socket (connection refused)', async () => {
    const path = `${guest.socketPath}_77`;
    // A socket file nobody listens on: a child binds it and exits without cleaning up.
    spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`]);
    expect(lstatSync(path).isSocket()).toBe(true);
    guest.send({ op: Op.Request, srcPort: 40002, dstPort: 77 });
    const rst = await guest.nextPacket();
    expect(rst.header).toMatchObject({ op: Op.Rst, dstPort: 40002 });
    expect(guest.warnings.join('\n')).toContain('ECONNREFUSED');
  });

  it.each<TxLayout>(['one', 'split', 'scattered'])('relays guest data sent as %s descriptor layout', async (layout) => {
    const listener = await listen(500);
    const { host } = await connect(1000, 500, listener);
    const payload = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 251));
    guest.send({ op: Op.Rw, srcPort: 1000, dstPort: 500 }, payload, layout);
    await host.until(() => host.data.length === 3000, 'the payload');
    expect(host.data.equals(payload)).toBe(true);
  });

  it('fills rx buffers split into header and data descriptors', async () => {
    await guest.close();
    guest = await VsockTestGuest.start({ rxSplit: true, rxBufferSize: 1024 });
    const listener = await listen(501);
    const { host } = await connect(1001, 501, listener);
    const payload = Buffer.alloc(5000, 0x5a);
    host.socket.write(payload);
    const { data } = await guest.receiveStream(1001, 501, 5000);
    expect(data.equals(payload)).toBe(true);
  });

  it('relays host data to the guest in packets no larger than its rx buffers', async () => {
    const listener = await listen(502);
    const { host } = await connect(1002, 502, listener);
    const payload = Buffer.from(Array.from({ length: 20000 }, (_, i) => (i * 7) % 256));
    host.socket.write(payload);
    const packets = [];
    let got = 0;
    while (got < payload.length) {
      const p = await guest.nextPacket((q) => q.header.op === Op.Rw);
      expect(p.header.len).toBeLessThanOrEqual(4096 - HEADER_SIZE);
      expect(p.header).toMatchObject({ srcPort: 502, dstPort: 1002, srcCid: HOST_CID, dstCid: GUEST_CID });
      packets.push(p.payload);
      got += p.payload.length;
    }
    expect(Buffer.concat(packets).equals(payload)).toBe(true);
  });

  it('drops packets whose source CID is not the guest\'s, without an answer', async () => {
    guest.send({ op: Op.Request, srcCid: 99, srcPort: 1, dstPort: 2 });
    await new Promise((r) => setTimeout(r, 20));
    expect(guest.takeFor(1)).toEqual([]);
    expect(guest.device.droppedPackets).toBe(1);
  });

  it('answers RST to packets for another CID or of an unknown type', async () => {
    guest.send({ op: Op.Request, dstCid: 7, srcPort: 11, dstPort: 12 });
    const toOtherVm = await guest.nextPacket((p) => p.header.dstPort === 11);
    expect(toOtherVm.header).toMatchObject({ op: Op.Rst, srcCid: 7, srcPort: 12, dstCid: GUEST_CID });
    guest.send({ op: Op.Request, type: 2 /* SEQPACKET, not offered */, srcPort: 13, dstPort: 14 });
    const seqpacket = await guest.nextPacket((p) => p.header.dstPort === 13);
    expect(seqpacket.header).toMatchObject({ op: Op.Rst, type: 2, srcPort: 14 });
  });

  it('answers RST to packets for no connection, but never RST to RST', async () => {
    guest.send({ op: Op.Rw, srcPort: 21, dstPort: 22 }, Buffer.from('stray'));
    guest.send({ op: Op.Rst, srcPort: 23, dstPort: 24 });
    guest.send({ op: Op.Shutdown, srcPort: 25, dstPort: 26, flags: SHUTDOWN_BOTH });
    const first = await guest.nextPacket();
    const second = await guest.nextPacket();
    expect([first.header.op, first.header.dstPort, second.header.op, second.header.dstPort]).toEqual([Op.Rst, 21, Op.Rst, 25]);
    await new Promise((r) => setTimeout(r, 20));
    expect(guest.takeFor(23)).toEqual([]);
  });

  it('drops tx buffers too short for a header', async () => {
    guest.sendRaw([{ readable: new Uint8Array(HEADER_SIZE - 1) }]);
    await new Promise((r) => setTimeout(r, 10));
    expect(guest.device.droppedPackets).toBe(1);
    expect(guest.driver.queue(1).takeUsed().map((u) => u.length)).toEqual([0]);
  });

  it('resets a connection whose RW header claims more bytes than it carries', async () => {
    const listener = await listen(503);
    const { host } = await connect(1003, 503, listener);
    const header = new Uint8Array(HEADER_SIZE);
    encodeHeader(guest.header({ op: Op.Rw, srcPort: 1003, dstPort: 503 }, 100), header);
    guest.sendRaw([{ readable: header }, { readable: new Uint8Array(10) }]);
    const rst = await guest.nextPacket((p) => p.header.dstPort === 1003);
    expect(rst.header.op).toBe(Op.Rst);
    await host.until(() => host.gone, 'the host socket to close');
    expect(host.data.length).toBe(0);
  });

  it('turns guest SHUTDOWN SEND into end() and the host\'s end into SHUTDOWN both, then lingers for RST', async () => {
    const listener = await listen(504);
    const { host } = await connect(1004, 504, listener);
    guest.send({ op: Op.Rw, srcPort: 1004, dstPort: 504 }, Buffer.from('echo data'));
    guest.send({ op: Op.Shutdown, srcPort: 1004, dstPort: 504, flags: SHUTDOWN_SEND });
    await host.until(() => host.ended, 'EOF on the host side');
    expect(host.text).toBe('echo data');
    host.socket.end('answer');
    const rw = await guest.nextPacket((p) => p.header.op === Op.Rw);
    expect(rw.payload.toString()).toBe('answer');
    const shutdown = await guest.nextPacket((p) => p.header.op === Op.Shutdown);
    expect(shutdown.header.flags).toBe(SHUTDOWN_BOTH);
    expect(guest.device.connectionCount).toBe(1); // lingering for the guest's RST
    guest.send({ op: Op.Rst, srcPort: 1004, dstPort: 504 });
    await new Promise((r) => setTimeout(r, 10));
    expect(guest.device.connectionCount).toBe(0);
    expect(guest.takeFor(1004)).toEqual([]); // no RST back to an RST
  });
});

describe('a broken driver', () => {
  it('fails the device (DEVICE_NEEDS_RESET) on a tx chain outside guest memory, dropping connections', async () => {
    const listener = await listen(510);
    const { host } = await connect(1010, 510, listener);
    const tx = guest.driver.queue(1);
    tx.takeUsed();
    tx.writeDescriptor(200, { address: 0x7fff_0000_0000, length: 64, flags: 0, next: 0 });
    tx.publish(200);
    tx.kick();
    expect(guest.driver.needsReset).toBe(true);
    expect(guest.device.connectionCount).toBe(0);
    await host.until(() => host.gone, 'the host socket to close');
  });
});

describe('connect timeout', () => {
  it('answers RST when the host listener never takes the connection (backlog full, never accepted)', async () => {
    await guest.close();
    guest = await VsockTestGuest.start({ device: { connectTimeoutMs: 100 } });
    const path = `${guest.socketPath}_520`;
    // A listener with a backlog of 0 that never calls accept(); one queued client fills it.
    const child = spawn('python3', ['-c', [
      'import socket, sys, time',
      's = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)',
      `s.bind(${JSON.stringify(path)})`,
      's.listen(0)',
      'print("ready", flush=True)',
      'time.sleep(30)',
    ].join('\n')]);
    try {
      await new Promise((resolve) => child.stdout.once('data', resolve));
      const filler = new SocketRecorder(net.createConnection({ path }));
      filler.socket.on('error', () => {});
      await new Promise((r) => setTimeout(r, 20));
      guest.send({ op: Op.Request, srcPort: 1020, dstPort: 520 });
      const rst = await guest.nextPacket((p) => p.header.dstPort === 1020);
      expect(rst.header.op).toBe(Op.Rst);
      expect(guest.warnings.join('\n')).toContain('no answer within 100 ms');
      expect(guest.device.connectionCount).toBe(0);
      filler.socket.destroy();
    } finally {
      child.kill();
    }
  });
});
