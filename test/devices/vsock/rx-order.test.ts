// The order in which the muxer fills rx buffers when many connections want
// them: a control packet a connection owes (REQUEST, RESPONSE, CREDIT_UPDATE)
// goes in the next rx buffer, ahead of the data other connections hold, and
// data goes round-robin. The guest posts rx buffers a few at a time, as a
// loaded guest gives them back, and the test counts the packets that went
// before the one it waits for: no sleeps, no clocks. A Linux guest's
// connect() gives the host 2 s to answer its REQUEST; behind a round of data
// packets from every busy connection, late connects timed out (seen with 50
// concurrent streams on a loaded machine).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Op } from '../../../src/devices/virtio/vsock/packet.js';
import {
  GuestStream, HostListener, type ReceivedPacket, VsockTestGuest, hostConnect, waitFor,
} from '../../helpers/vsock-guest.js';

const BUSY = 20;
const HOST_PORT = 6000;
const FIRST_BUSY_PORT = 1000;
/** Host data held for each busy connection: several rx buffers' worth (4052 bytes of payload each). */
const HELD = 64 * 1024;
/** Rx buffers the guest gives back at a time. */
const BATCH = 4;

let guest: VsockTestGuest;
let listener: HostListener;
/** The guest ends of the busy connections. */
let busy: GuestStream[];

beforeEach(async () => {
  guest = await VsockTestGuest.start({ autoRefill: false });
  listener = await HostListener.open(`${guest.socketPath}_${HOST_PORT}`);
  busy = await busyConnections();
});

afterEach(async () => {
  await listener.close();
  await guest.close();
});

/** BUSY guest-initiated connections to HOST_PORT, each with HELD bytes of host data waiting for rx buffers. */
async function busyConnections() {
  const ports = Array.from({ length: BUSY }, (_, i) => FIRST_BUSY_PORT + i);
  for (const port of ports) guest.send({ op: Op.Request, srcPort: port, dstPort: HOST_PORT });
  await waitFor(() => ports.every((port) => guest.device.connectionState(HOST_PORT, port) === 'established'), 'the busy connections');
  await waitFor(() => listener.accepted.length === BUSY, 'the host to accept them');
  guest.refillRx(BUSY);
  guest.pump();
  const responses = guest.inbox.splice(0);
  expect(responses.map((p) => p.header.op)).toEqual(ports.map(() => Op.Response));
  const streams = responses.map((response) => {
    const stream = new GuestStream(guest, response.header.dstPort, HOST_PORT);
    stream.handle(response);
    return stream;
  });
  for (const host of listener.accepted) host.socket.write(Buffer.alloc(HELD, 0x5a));
  await waitFor(() => guest.device.bufferedBytes === BUSY * HELD, 'the device to hold every busy connection\'s data');
  return streams;
}

/**
 * Gives the guest's rx buffers back BATCH at a time until a packet matching
 * `match` arrives; returns the packets that came before it, and it.
 */
function receiveUntil(match: (p: ReceivedPacket) => boolean): { before: ReceivedPacket[]; packet: ReceivedPacket } {
  const before: ReceivedPacket[] = [];
  for (;;) {
    guest.refillRx(BATCH);
    guest.pump();
    const batch = guest.inbox.splice(0);
    if (batch.length === 0) throw new Error(`nothing more for the guest after ${before.length} packets`);
    const index = batch.findIndex(match);
    if (index >= 0) {
      before.push(...batch.slice(0, index));
      guest.inbox.push(...batch.slice(index + 1)); // for the caller
      return { before, packet: batch[index]! };
    }
    before.push(...batch);
  }
}

/** The guest ports of the next `count` rx packets, BATCH buffers at a time. */
function nextPorts(count: number): number[] {
  const ports: number[] = [];
  while (ports.length < count) {
    guest.refillRx(Math.min(BATCH, count - ports.length));
    guest.pump();
    const batch = guest.inbox.splice(0);
    if (batch.length === 0) throw new Error(`nothing more for the guest after ${ports.length} packets`);
    ports.push(...batch.map((p) => p.header.dstPort));
  }
  return ports;
}

describe(`rx order with ${BUSY} connections holding data for the guest`, () => {
  it('a new guest connection gets its RESPONSE in the next rx buffer once tsvmm has connected to the host', async () => {
    guest.send({ op: Op.Request, srcPort: 2000, dstPort: HOST_PORT });
    await waitFor(() => guest.device.connectionState(HOST_PORT, 2000) === 'established', 'the host connect');
    const { before, packet } = receiveUntil((p) => p.header.dstPort === 2000);
    expect(packet.header.op).toBe(Op.Response);
    expect(before.length).toBe(0);
    // Data still goes round-robin: the next BUSY packets are one from each busy connection.
    expect(new Set(nextPorts(BUSY)).size).toBe(BUSY);
  });

  it('a host program\'s CONNECT gets its REQUEST to the guest in the next rx buffer', async () => {
    const client = await hostConnect(guest.socketPath, 'CONNECT 7000\n');
    try {
      await waitFor(() => guest.device.connectionCount === BUSY + 1, 'the CONNECT line to be read');
      const { before, packet } = receiveUntil((p) => p.header.dstPort === 7000);
      expect(packet.header.op).toBe(Op.Request);
      expect(before.length).toBe(0);
    } finally {
      client.destroy();
    }
  });

  it('answers a CREDIT_REQUEST in the next rx buffer, so a guest writer is not held up by other connections\' data', async () => {
    const stream = busy[BUSY - 1]!;
    // Take one round of data so the asking connection is not at the head of the line by chance.
    expect(new Set(nextPorts(BUSY)).size).toBe(BUSY);
    guest.send(stream.header(Op.CreditRequest));
    const { before, packet } = receiveUntil((p) => p.header.dstPort === stream.guestPort);
    // Its own data would carry the same fwd_cnt; either way it comes first.
    expect([Op.CreditUpdate, Op.Rw]).toContain(packet.header.op);
    expect(before.length).toBe(0);
  });
});
