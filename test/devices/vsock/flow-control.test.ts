// Credit-based flow control through the device (virtio spec 5.10.6.3), with
// real Unix sockets on the host side.
import { afterEach, describe, expect, it } from 'vitest';
import { Op } from '../../../src/devices/virtio/vsock/packet.js';
import { GuestStream, HostListener, SocketRecorder, VsockTestGuest, hostConnect, waitFor } from '../../helpers/vsock-guest.js';

const BUFFER = 64 * 1024; // the device's per-connection buffer in these tests

let guest: VsockTestGuest;
const listeners: HostListener[] = [];

afterEach(async () => {
  for (const l of listeners.splice(0)) await l.close();
  await guest.close();
});

async function start(): Promise<void> {
  guest = await VsockTestGuest.start({ device: { connectionBufferSize: BUFFER } });
}

/** Guest connects from `guestPort` to host port `hostPort`, advertising `bufAlloc`. */
async function guestConnect(guestPort: number, hostPort: number, bufAlloc: number, options?: { pauseOnConnect?: boolean }) {
  const listener = await HostListener.open(`${guest.socketPath}_${hostPort}`, options);
  listeners.push(listener);
  guest.send({ op: Op.Request, srcPort: guestPort, dstPort: hostPort, bufAlloc });
  const response = await guest.nextPacket((p) => p.header.dstPort === guestPort);
  expect(response.header.op).toBe(Op.Response);
  await waitFor(() => listener.accepted.length === 1, 'the host to accept');
  const stream = new GuestStream(guest, guestPort, hostPort, bufAlloc);
  stream.handle(response);
  return { stream, host: listener.accepted[0]! };
}

function pattern(length: number, seed = 1): Buffer {
  const data = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) data[i] = (i * 31 + seed) & 0xff;
  return data;
}

describe('vsock credit', () => {
  it('advertises its buffer as buf_alloc and refuses a guest that sends past it (RST for that connection only)', async () => {
    await start();
    const a = await guestConnect(100, 600, 256 * 1024);
    const b = await guestConnect(101, 601, 256 * 1024);
    expect(a.stream.peerBufAlloc).toBe(BUFFER);
    // 16 x 4 KiB exactly fill the window; the 17th packet is one too many.
    for (let i = 0; i < 16; i++) guest.send(a.stream.header(Op.Rw), Buffer.alloc(4096, i));
    guest.send(a.stream.header(Op.Rw), Buffer.alloc(1, 0xff));
    const rst = await guest.nextPacket((p) => p.header.dstPort === 100 && p.header.op === Op.Rst);
    expect(rst.header.srcPort).toBe(600);
    await a.host.until(() => a.host.gone, 'the host socket of the bad connection to close');
    // The other connection is untouched.
    b.host.socket.write('fine');
    expect((await b.stream.read(4)).toString()).toBe('fine');
    expect(guest.device.connectionCount).toBe(1);
  });

  it('pauses a guest writer while the host reader is stalled, then resumes it', async () => {
    await start();
    const { stream, host } = await guestConnect(102, 602, 256 * 1024, { pauseOnConnect: true });
    const data = pattern(4 << 20);
    // The host reads nothing: the guest gets at most our buffer plus what the
    // kernel's socket buffers hold, then runs out of credit.
    const sentWhileStalled = await stream.write(data, { chunk: 16 * 1024, stallMs: 150 });
    expect(sentWhileStalled).toBeLessThan(data.length);
    expect(stream.credit).toBe(0);
    // Bytes the device holds for the host never exceed what it advertised.
    expect(((stream.sent - stream.peerFwdCnt) >>> 0)).toBeLessThanOrEqual(BUFFER);

    host.socket.resume();
    const rest = await stream.write(data.subarray(sentWhileStalled), { chunk: 16 * 1024 });
    expect(sentWhileStalled + rest).toBe(data.length);
    await host.until(() => host.data.length === data.length, 'all data at the host', 10_000);
    expect(host.data.equals(data)).toBe(true);
  });

  it('sends a CREDIT_UPDATE when the guest has used up half its window and the host consumed it', async () => {
    await start();
    const { stream, host } = await guestConnect(103, 603, 256 * 1024);
    guest.send(stream.header(Op.Rw), Buffer.alloc(20000, 1));
    await host.until(() => host.data.length === 20000, 'the first data at the host');
    await new Promise((r) => setTimeout(r, 20));
    expect(guest.takeFor(103)).toEqual([]); // the guest still sees 44 KiB free: no update
    guest.send(stream.header(Op.Rw), Buffer.alloc(20000, 2)); // now it sees 24 KiB free, under half
    await host.until(() => host.data.length === 40000, 'the data at the host');
    // It goes out as the second packet arrives, with the 20000 bytes already forwarded;
    // once the second write completes the guest sees 45 KiB free, so no second update.
    const update = await guest.nextPacket((p) => p.header.dstPort === 103);
    expect(update.header).toMatchObject({ op: Op.CreditUpdate, fwdCnt: 20000, bufAlloc: BUFFER });
    await new Promise((r) => setTimeout(r, 20));
    expect(guest.takeFor(103)).toEqual([]); // exactly one
  });

  it('answers CREDIT_REQUEST with its current fwd_cnt', async () => {
    await start();
    const { stream, host } = await guestConnect(104, 604, 256 * 1024);
    guest.send(stream.header(Op.Rw), Buffer.from('12345'));
    await host.until(() => host.data.length === 5, 'the data at the host');
    guest.send(stream.header(Op.CreditRequest));
    const update = await guest.nextPacket((p) => p.header.dstPort === 104);
    expect(update.header).toMatchObject({ op: Op.CreditUpdate, fwdCnt: 5, bufAlloc: BUFFER, len: 0 });
  });

  it('sends the guest no more than its credit, asks with CREDIT_REQUEST, and resumes on CREDIT_UPDATE', async () => {
    await start();
    const { stream, host } = await guestConnect(105, 605, 8192);
    stream.consuming = false; // a guest app that does not read
    const data = pattern(1 << 20, 7); // more than the kernel's socket buffers hold
    let hostDone = false;
    host.socket.write(data, () => { hostDone = true; });

    // Exactly 8192 bytes of RW, then a CREDIT_REQUEST, then silence.
    let rwBytes = 0;
    for (;;) {
      const p = await guest.nextPacket((q) => q.header.dstPort === 105);
      stream.handle(p);
      if (p.header.op === Op.CreditRequest) break;
      expect(p.header.op).toBe(Op.Rw);
      rwBytes += p.header.len;
    }
    expect(rwBytes).toBe(8192);
    await new Promise((r) => setTimeout(r, 30));
    expect(guest.takeFor(105)).toEqual([]);
    expect(hostDone).toBe(false); // the host writer is held back, not buffered without bound

    // The app reads: the guest tells the host, and data flows to the end.
    stream.consuming = true;
    stream.consume(8192);
    const all = await stream.read(data.length);
    expect(all.equals(data)).toBe(true);
    await waitFor(() => hostDone, 'the host write to complete');
  });

  it('holds host data while the guest posts no rx buffers, and delivers it when it does', async () => {
    guest = await VsockTestGuest.start({ autoRefill: false, device: { connectionBufferSize: BUFFER } });
    guest.refillRx(1);
    const client = new SocketRecorder(await hostConnect(guest.socketPath, 'CONNECT 90\n'));
    const request = await guest.nextPacket();
    const hostPort = request.header.srcPort;
    const stream = new GuestStream(guest, 90, hostPort, 1 << 20);
    guest.send({ ...stream.header(Op.Response) });
    await client.until(() => client.text === `OK ${hostPort}\n`, 'OK');
    const data = pattern(300_000, 3);
    client.socket.write(data);
    await new Promise((r) => setTimeout(r, 30));
    expect(guest.driver.queue(0).takeUsed()).toEqual([]); // no buffers, nothing delivered
    guest.autoRefill = true;
    guest.refillRx();
    expect((await stream.read(data.length)).equals(data)).toBe(true);
  });
});
