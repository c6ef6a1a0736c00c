// One Connection's state machine, driven synchronously: a fake host stream,
// a recording owner and a fake guest end (connection-fakes.ts) stand in for
// the socket, the muxer and the queues, and fake timers stand in for time.
// Every transition of the diagram in connection.ts, the half-closes, credit
// both ways, and the order of the packets owed to the guest. The same
// behaviour through the whole device, with real sockets, is in
// host-initiated, guest-initiated, lifecycle and flow-control.test.ts.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Connection, type ConnectionParams } from '../../../src/devices/virtio/vsock/connection.js';
import {
  HEADER_SIZE, HOST_CID, Op, SHUTDOWN_BOTH, SHUTDOWN_RCV, SHUTDOWN_SEND,
} from '../../../src/devices/virtio/vsock/packet.js';
import { GUEST_CID } from '../../helpers/vsock-guest.js';
import {
  BUFFER_SIZE, FakeConnectAttempt, FakeGuest, FakeHostStream, GUEST_PORT, HOST_PORT, RecordingOwner, TIMEOUTS,
} from './connection-fakes.js';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

function params(owner: RecordingOwner): ConnectionParams {
  return { owner, guestCid: GUEST_CID, hostPort: HOST_PORT, guestPort: GUEST_PORT, bufferSize: BUFFER_SIZE, timeouts: TIMEOUTS };
}

/** A host program's CONNECT, after which it wrote `initial`; the REQUEST not yet taken. */
function fromHost(initial = '') {
  const owner = new RecordingOwner();
  const host = new FakeHostStream();
  const guest = new FakeGuest();
  const connection = Connection.fromHost(params(owner), host, Buffer.from(initial));
  guest.connection = connection;
  return { owner, host, guest, connection };
}

/** A guest's REQUEST, with tsvmm's connect to the host listener under way. */
function fromGuest() {
  const owner = new RecordingOwner();
  const guest = new FakeGuest();
  const connection = Connection.fromGuest(params(owner), guest.header(Op.Request));
  const attempt = new FakeConnectAttempt();
  connection.pendingConnect = attempt;
  guest.connection = connection;
  return { owner, guest, connection, attempt };
}

/** An established host-initiated connection with nothing owed either way. */
function established(guestBufAlloc = 64 * 1024) {
  const setup = fromHost();
  setup.guest.bufAlloc = guestBufAlloc;
  setup.guest.receive(); // the REQUEST
  setup.guest.send(Op.Response);
  setup.host.written.length = 0; // the OK line
  return setup;
}

/** An established connection whose host ended after the guest stopped sending: SHUTDOWN both sent. */
function closing() {
  const setup = established();
  setup.guest.send(Op.Shutdown, { flags: SHUTDOWN_SEND });
  setup.host.emitEnd();
  expect(setup.guest.receiveAll()).toEqual([`SHUTDOWN ${SHUTDOWN_BOTH}`]);
  return setup;
}

/** The connection is over and told its owner once, asking for an RST to the guest or not. */
function expectClosed(connection: Connection, owner: RecordingOwner, { rst }: { rst: boolean }): void {
  expect(connection.state).toBe('closed');
  expect(owner.closes).toEqual([rst]);
}

describe('host-initiated: requesting', () => {
  it('owes the guest a REQUEST and reads nothing from the host until the guest accepts', () => {
    const { host, guest, connection } = fromHost('early');
    expect(connection.state).toBe('requesting');
    expect(connection.hasRxWork()).toBe(true);
    const request = guest.receive()!;
    expect(request.header).toMatchObject({
      op: Op.Request, srcCid: HOST_CID, dstCid: GUEST_CID, srcPort: HOST_PORT, dstPort: GUEST_PORT, bufAlloc: BUFFER_SIZE, fwdCnt: 0,
    });
    // 'early' waits for the RESPONSE; so do the host program's further writes.
    expect(guest.receiveAll()).toEqual([]);
    expect(connection.hasRxWork()).toBe(false);
    expect(host.reading).toBe(false);
    expect(host.text).toBe('');
  });

  it('RESPONSE establishes it: the host program gets its OK line, then the stream starts', () => {
    const { owner, host, guest, connection } = fromHost('early');
    guest.receive();
    guest.send(Op.Response);
    expect(connection.state).toBe('established');
    expect(host.text).toBe(`OK ${HOST_PORT}\n`);
    expect(host.reading).toBe(true);
    expect(owner.rxWanted).toBeGreaterThan(0);
    expect(guest.receiveAll()).toEqual(['RW early']);
    // The REQUEST deadline is gone with the stage that held it.
    vi.advanceTimersByTime(TIMEOUTS.requestMs * 10);
    expect(connection.state).toBe('established');
    expect(owner.closes).toEqual([]);
  });

  it.each([
    ['RST (nobody listens): no RST back', Op.Rst, false],
    ['anything else: a protocol error, reset', Op.CreditUpdate, true],
  ])('a guest answer other than RESPONSE closes the host program without an OK line: %s', (_what, op, rst) => {
    const { owner, host, guest, connection } = fromHost();
    guest.receive();
    guest.send(op);
    expectClosed(connection, owner, { rst });
    expect(host.destroyed).toBe(true);
    expect(host.text).toBe('');
    expect(connection.hasRxWork()).toBe(false);
  });

  it('gives the guest requestMs to answer, then resets: RST to the guest, host program closed', () => {
    const { owner, host, guest, connection } = fromHost();
    guest.receive();
    vi.advanceTimersByTime(TIMEOUTS.requestMs - 1);
    expect(connection.state).toBe('requesting');
    vi.advanceTimersByTime(1);
    expectClosed(connection, owner, { rst: true });
    expect(host.destroyed).toBe(true);
  });

  it.each(['error', 'close'] as const)('the host program going away (%s) while requesting resets the connection', (event) => {
    const { owner, host, connection } = fromHost();
    if (event === 'error') host.emitError();
    else host.emitClose();
    expectClosed(connection, owner, { rst: true });
  });
});

describe('guest-initiated: connecting', () => {
  it('owes nothing while it connects to the host listener, then RESPONSE', () => {
    const { owner, guest, connection, attempt } = fromGuest();
    expect(connection.state).toBe('connecting');
    expect(connection.hasRxWork()).toBe(false);
    expect(guest.receive()).toBeNull();
    const host = new FakeHostStream();
    connection.hostConnected(host);
    expect(connection.state).toBe('established');
    expect(attempt.cancelled).toBe(false); // it succeeded: nothing to cancel
    expect(owner.rxWanted).toBe(1);
    expect(host.reading).toBe(true); // the REQUEST carried the guest's credit
    expect(guest.receiveAll()).toEqual(['RESPONSE']);
  });

  it('a failed connect answers the REQUEST with RST', () => {
    const { owner, connection } = fromGuest();
    connection.hostConnectFailed();
    expectClosed(connection, owner, { rst: true });
  });

  it('an RST from the guest abandons the connect, and a connection that still arrives is closed', () => {
    const { owner, guest, connection, attempt } = fromGuest();
    guest.send(Op.Rst);
    expectClosed(connection, owner, { rst: false });
    expect(attempt.cancelled).toBe(true);
    const late = new FakeHostStream();
    connection.hostConnected(late);
    expect(late.destroyed).toBe(true);
    connection.hostConnectFailed();
    expect(owner.closes).toEqual([false]);
  });

  it('a packet before the RESPONSE is a protocol error, and abandons the connect', () => {
    const { owner, guest, connection, attempt } = fromGuest();
    guest.send(Op.Rw, { payload: 'too soon' });
    expectClosed(connection, owner, { rst: true });
    expect(attempt.cancelled).toBe(true);
  });
});

describe('host to guest data', () => {
  it('fills each rx buffer as far as it goes', () => {
    const { owner, host, guest } = established();
    const before = owner.rxWanted;
    host.emitData('abcdefghij');
    expect(owner.rxWanted).toBe(before + 1);
    expect(guest.receive(HEADER_SIZE + 4)!.payload.toString()).toBe('abcd');
    expect(guest.receiveAll()).toEqual(['RW efghij']);
  });

  it('stays within the guest credit, asks for more once per stall, and pauses the host meanwhile', () => {
    const { host, guest, connection } = established(8);
    host.emitData('0123456789AB');
    expect(host.reading).toBe(false); // 12 held, 8 of credit
    expect(guest.receiveAll()).toEqual(['RW 01234567', 'CREDIT_REQUEST']);
    expect(connection.hasRxWork()).toBe(false);
    guest.fwdCnt = 8; // its reader took all 8
    guest.send(Op.CreditUpdate);
    expect(host.reading).toBe(true);
    expect(guest.receiveAll()).toEqual(['RW 89AB']);
    host.emitData('CDEFGH');
    expect(guest.receiveAll()).toEqual(['RW CDEF', 'CREDIT_REQUEST']);
  });

  it('reads the host only while it holds less than its own buffer', () => {
    const { host, guest } = established(1 << 20);
    host.emitData(Buffer.alloc(BUFFER_SIZE - 1));
    expect(host.reading).toBe(true);
    host.emitData(Buffer.alloc(1));
    expect(host.reading).toBe(false);
    expect(guest.receive(HEADER_SIZE + BUFFER_SIZE)!.payload.length).toBe(BUFFER_SIZE);
    expect(host.reading).toBe(true);
  });

  it('counts what it holds and what the host stream buffers', () => {
    const { host, connection } = established();
    host.bufferedBytes = 7;
    host.emitData('12345');
    expect(connection.bufferedBytes).toBe(12);
  });
});

describe('guest to host data', () => {
  it('writes the packets of one tx pass to the host stream corked, until the owner uncorks', () => {
    const { owner, host, guest, connection } = established();
    guest.send(Op.Rw, { payload: 'hello' });
    guest.send(Op.Rw, { payload: ' world' });
    expect(host.text).toBe('hello world');
    expect(host.corks).toBe(1);
    expect(owner.corkedBy).toEqual([connection]);
    connection.uncork();
    connection.uncork();
    expect(host.corks).toBe(0);
  });

  it('counts bytes as forwarded once the host stream wrote them, and volunteers CREDIT_UPDATE when the guest runs low', () => {
    const { owner, host, guest } = established();
    guest.send(Op.Rw, { payload: Buffer.alloc(600) });
    expect(guest.receive()).toBeNull(); // nothing freed yet
    const before = owner.rxWanted;
    host.finishWrites();
    expect(owner.rxWanted).toBe(before + 1);
    const update = guest.receive()!;
    expect(update.header).toMatchObject({ op: Op.CreditUpdate, bufAlloc: BUFFER_SIZE, fwdCnt: 600 });
    expect(guest.receive()).toBeNull();
  });

  it('a failed host write frees no credit', () => {
    const { host, guest } = established();
    guest.send(Op.Rw, { payload: Buffer.alloc(600) });
    host.finishWrites(new Error('EPIPE'));
    expect(guest.receive()).toBeNull();
  });

  it('answers a CREDIT_REQUEST with CREDIT_UPDATE', () => {
    const { guest } = established();
    guest.send(Op.CreditRequest);
    expect(guest.receiveAll()).toEqual(['CREDIT_UPDATE']);
  });

  it('ignores an empty RW', () => {
    const { host, guest, connection } = established();
    guest.send(Op.Rw);
    expect(host.written).toEqual([]);
    expect(connection.state).toBe('established');
  });

  it.each([
    ['more than the credit it was given', (guest: FakeGuest) => guest.send(Op.Rw, { payload: Buffer.alloc(BUFFER_SIZE + 1) })],
    ['data after its SHUTDOWN SEND', (guest: FakeGuest) => {
      guest.send(Op.Shutdown, { flags: SHUTDOWN_SEND });
      guest.send(Op.Rw, { payload: 'more' });
    }],
    ['a REQUEST on an established connection', (guest: FakeGuest) => guest.send(Op.Request)],
    ['an unknown op', (guest: FakeGuest) => guest.send(99)],
  ])('resets the connection for %s', (_what, misbehave) => {
    const { owner, host, guest, connection } = established();
    misbehave(guest);
    expectClosed(connection, owner, { rst: true });
    expect(host.destroyed).toBe(true);
    expect(host.text).toBe('');
  });
});

describe('half-close', () => {
  it('guest SHUTDOWN SEND ends the host stream; data still flows to the guest', () => {
    const { host, guest, connection } = established();
    guest.send(Op.Shutdown, { flags: SHUTDOWN_SEND });
    expect(host.ended).toBe(true);
    expect(connection.state).toBe('established');
    host.emitData('still here');
    expect(guest.receiveAll()).toEqual(['RW still here']);
  });

  it('guest SHUTDOWN RCV drops what is held, drains the host into the void and owes no SHUTDOWN for its end', () => {
    const { host, guest, connection } = established(4);
    host.emitData('abcdefgh');
    expect(host.reading).toBe(false);
    guest.send(Op.Shutdown, { flags: SHUTDOWN_RCV });
    expect(connection.hasRxWork()).toBe(false);
    expect(host.reading).toBe(true); // credit no longer matters
    host.emitData('more');
    host.emitEnd();
    expect(guest.receiveAll()).toEqual([]);
    expect(connection.state).toBe('established');
    guest.send(Op.Rw, { payload: 'the guest still talks' });
    expect(host.text).toBe('the guest still talks');
  });

  it('a SHUTDOWN SEND still owed is withdrawn when the guest stops receiving', () => {
    const { host, guest, connection } = established();
    host.emitEnd();
    guest.send(Op.Shutdown, { flags: SHUTDOWN_RCV });
    expect(guest.receiveAll()).toEqual([]);
    expect(connection.state).toBe('established');
  });

  it('the host end reaches the guest as SHUTDOWN SEND, after the last byte', () => {
    const { host, guest, connection } = established();
    host.emitData('last');
    host.emitEnd();
    expect(host.reading).toBe(false);
    expect(guest.receiveAll()).toEqual(['RW last', `SHUTDOWN ${SHUTDOWN_SEND}`]);
    expect(connection.state).toBe('established');
  });

  it('the host end after the guest stopped sending is a full close: SHUTDOWN both, and the connection is closing', () => {
    const { connection } = closing();
    expect(connection.state).toBe('closing');
  });

  it('after our SHUTDOWN SEND, the guest\'s SHUTDOWN SEND is a full close: RST, host stream ended gracefully', () => {
    const { owner, host, guest, connection } = established();
    host.emitEnd();
    expect(guest.receiveAll()).toEqual([`SHUTDOWN ${SHUTDOWN_SEND}`]);
    guest.send(Op.Shutdown, { flags: SHUTDOWN_SEND });
    expectClosed(connection, owner, { rst: true });
    expect(host.ended).toBe(true);
    expect(host.destroyed).toBe(false);
  });

  // The guest's SHUTDOWN SEND can arrive while ours is owed but not yet in
  // an rx buffer (none was free). On the wire the guest then finished first,
  // so ours goes out as SHUTDOWN both and the connection lingers for the RST,
  // as when the host ends after the guest: nothing stays established.
  it('the guest\'s SHUTDOWN SEND before our owed SHUTDOWN SEND went out: ours becomes SHUTDOWN both, and the connection is closing', () => {
    const { owner, host, guest, connection } = established();
    host.emitEnd(); // SHUTDOWN SEND owed; no rx buffer taken yet
    guest.send(Op.Shutdown, { flags: SHUTDOWN_SEND });
    expect(host.ended).toBe(true);
    expect(guest.receiveAll()).toEqual([`SHUTDOWN ${SHUTDOWN_BOTH}`]);
    expect(connection.state).toBe('closing');
    guest.send(Op.Rst);
    expectClosed(connection, owner, { rst: false });
    expect(host.destroyed).toBe(false);
  });

  it('the guest\'s SHUTDOWN SEND before our owed SHUTDOWN SEND went out: without the guest\'s RST it ends within lingerMs', () => {
    const { owner, host, guest, connection } = established();
    host.emitEnd();
    guest.send(Op.Shutdown, { flags: SHUTDOWN_SEND });
    guest.receiveAll();
    vi.advanceTimersByTime(TIMEOUTS.lingerMs);
    expectClosed(connection, owner, { rst: true });
  });

  it('the guest\'s SHUTDOWN SEND, then the host ends with data still held: the last byte, then SHUTDOWN both, then closing', () => {
    const { host, guest, connection } = established(4);
    host.emitData('abcdefgh');
    guest.send(Op.Shutdown, { flags: SHUTDOWN_SEND });
    host.emitEnd();
    expect(guest.receiveAll()).toEqual(['RW abcd', 'CREDIT_REQUEST']);
    guest.fwdCnt = 4;
    guest.send(Op.CreditUpdate);
    expect(guest.receiveAll()).toEqual(['RW efgh', `SHUTDOWN ${SHUTDOWN_BOTH}`]);
    expect(connection.state).toBe('closing');
  });

  it('the guest\'s SHUTDOWN both before our owed SHUTDOWN SEND went out: a full close at once, RST and no SHUTDOWN', () => {
    const { owner, host, guest, connection } = established();
    host.emitEnd();
    guest.send(Op.Shutdown, { flags: SHUTDOWN_BOTH });
    expectClosed(connection, owner, { rst: true });
    expect(guest.receive()).toBeNull();
    expect(host.ended).toBe(true);
    expect(host.destroyed).toBe(false);
  });

  it('the guest\'s SHUTDOWN RCV, then SEND, before our owed SHUTDOWN SEND went out: a full close at the second', () => {
    const { owner, host, guest, connection } = established();
    host.emitEnd();
    guest.send(Op.Shutdown, { flags: SHUTDOWN_RCV });
    expect(connection.state).toBe('established'); // the guest may still send
    guest.send(Op.Shutdown, { flags: SHUTDOWN_SEND });
    expectClosed(connection, owner, { rst: true });
    expect(guest.receive()).toBeNull();
    expect(host.destroyed).toBe(false);
  });

  it('the guest\'s SHUTDOWN RCV after ours became SHUTDOWN both, before it went out: a full close at once', () => {
    const { owner, host, guest, connection } = established();
    host.emitEnd();
    guest.send(Op.Shutdown, { flags: SHUTDOWN_SEND });
    guest.send(Op.Shutdown, { flags: SHUTDOWN_RCV });
    expectClosed(connection, owner, { rst: true });
    expect(guest.receive()).toBeNull();
  });

  it('guest SHUTDOWN both is a full close: its data reaches the host, which is ended, and the guest gets RST', () => {
    const { owner, host, guest, connection } = established();
    guest.send(Op.Rw, { payload: 'bye' });
    guest.send(Op.Shutdown, { flags: SHUTDOWN_BOTH });
    expectClosed(connection, owner, { rst: true });
    expect(host.text).toBe('bye');
    expect(host.ended).toBe(true);
    expect(host.destroyed).toBe(false);
  });

  it('the host stream closing after its end is no abort', () => {
    const { owner, host, guest, connection } = established();
    host.emitEnd();
    host.emitClose();
    expect(connection.state).toBe('established');
    expect(owner.closes).toEqual([]);
    expect(guest.receiveAll()).toEqual([`SHUTDOWN ${SHUTDOWN_SEND}`]);
  });

  it.each(['error', 'close'] as const)('the host stream going away (%s) without its end resets the connection', (event) => {
    const { owner, host, connection } = established();
    if (event === 'error') host.emitError();
    else host.emitClose();
    expectClosed(connection, owner, { rst: true });
    expect(host.destroyCalls).toBe(1);
  });
});

describe('closing', () => {
  it('the guest\'s RST closes it, and the host stream is ended gracefully', () => {
    const { owner, host, guest, connection } = closing();
    guest.send(Op.Rst);
    expectClosed(connection, owner, { rst: false });
    expect(host.destroyed).toBe(false);
  });

  it('without the guest\'s RST within lingerMs it sends its own', () => {
    const { owner, guest, connection } = closing();
    vi.advanceTimersByTime(TIMEOUTS.lingerMs - 1);
    expect(connection.state).toBe('closing');
    vi.advanceTimersByTime(1);
    expectClosed(connection, owner, { rst: true });
    expect(guest.receive()).toBeNull(); // the RST is the owner's to send
  });

  it('takes nothing but RST from the guest, and drops host data', () => {
    const { owner, host, guest, connection } = closing();
    guest.send(Op.Rw, { payload: 'ignored' });
    guest.send(Op.CreditRequest);
    host.emitData('dropped');
    expect(connection.state).toBe('closing');
    expect(host.text).toBe('');
    expect(guest.receiveAll()).toEqual([]);
    expect(owner.closes).toEqual([]);
  });
});

// A guest that posts no rx buffer cannot take the SHUTDOWN both we owe it:
// the linger runs from the moment it is owed, so the connection (its slot
// at the muxer, its host stream) still ends within lingerMs.
describe('both directions finished while the guest takes no rx buffer', () => {
  /** Ends after lingerMs from now, not before: closed, RST asked of the owner, the host stream ended gracefully. */
  function expectEndsWithinLinger(setup: ReturnType<typeof established>): void {
    const { owner, host, guest, connection } = setup;
    vi.advanceTimersByTime(TIMEOUTS.lingerMs - 1);
    expect(connection.state).toBe('established');
    expect(owner.closes).toEqual([]);
    vi.advanceTimersByTime(1);
    expectClosed(connection, owner, { rst: true });
    expect(guest.receive()).toBeNull(); // the SHUTDOWN is dropped; the RST is the owner's to send
    expect(host.ended).toBe(true);
    expect(host.destroyed).toBe(false);
    // The final flush is bounded as after any linger.
    vi.advanceTimersByTime(TIMEOUTS.lingerMs);
    expect(host.destroyCalls).toBe(1);
  }

  it('the host ends after the guest\'s SHUTDOWN SEND: the connection still ends within lingerMs', () => {
    const setup = established();
    setup.guest.send(Op.Shutdown, { flags: SHUTDOWN_SEND });
    setup.host.emitEnd(); // SHUTDOWN both owed; no rx buffer comes
    expectEndsWithinLinger(setup);
  });

  it('the guest\'s SHUTDOWN SEND while our SHUTDOWN SEND is owed: the connection still ends within lingerMs', () => {
    const setup = established();
    setup.host.emitEnd(); // SHUTDOWN SEND owed; no rx buffer comes
    setup.guest.send(Op.Shutdown, { flags: SHUTDOWN_SEND }); // now SHUTDOWN both
    expectEndsWithinLinger(setup);
  });

  it('the last host data, then the SHUTDOWN both it was owed behind: the linger starts once that is owed', () => {
    const setup = established();
    setup.host.emitData('last');
    setup.guest.send(Op.Shutdown, { flags: SHUTDOWN_SEND });
    setup.host.emitEnd();
    vi.advanceTimersByTime(TIMEOUTS.lingerMs * 10); // data still held: the host-to-guest direction is not done
    expect(setup.connection.state).toBe('established');
    expect(setup.guest.receive()!.payload.toString()).toBe('last');
    expectEndsWithinLinger(setup);
  });

  it('a SHUTDOWN both taken late starts no new linger: the RST is due lingerMs after it became owed', () => {
    const { owner, host, guest, connection } = established();
    guest.send(Op.Shutdown, { flags: SHUTDOWN_SEND });
    host.emitEnd();
    vi.advanceTimersByTime(TIMEOUTS.lingerMs - 10);
    expect(guest.receiveAll()).toEqual([`SHUTDOWN ${SHUTDOWN_BOTH}`]);
    expect(connection.state).toBe('closing');
    vi.advanceTimersByTime(9);
    expect(connection.state).toBe('closing');
    vi.advanceTimersByTime(1);
    expectClosed(connection, owner, { rst: true });
  });

  it.each([
    ['the guest\'s SHUTDOWN RCV (a full close)', (setup: ReturnType<typeof established>) => setup.guest.send(Op.Shutdown, { flags: SHUTDOWN_RCV })],
    ['the guest\'s RST', (setup: ReturnType<typeof established>) => setup.guest.send(Op.Rst)],
    ['the host stream failing', (setup: ReturnType<typeof established>) => setup.host.emitError()],
  ])('whatever ends it first while the SHUTDOWN both is owed stops the linger: %s', (_what, end) => {
    const setup = established();
    setup.guest.send(Op.Shutdown, { flags: SHUTDOWN_SEND });
    setup.host.emitEnd();
    end(setup);
    expect(setup.connection.state).toBe('closed');
    expect(setup.owner.closes).toHaveLength(1);
    // Only the guard of a graceful final flush may still run.
    expect(vi.getTimerCount()).toBe(setup.host.destroyed ? 0 : 1);
    vi.advanceTimersByTime(TIMEOUTS.lingerMs * 10);
    expect(setup.owner.closes).toHaveLength(1);
  });

  it('an abort while the SHUTDOWN both is owed stops the linger', () => {
    const { owner, host, guest, connection } = established();
    guest.send(Op.Shutdown, { flags: SHUTDOWN_SEND });
    host.emitEnd();
    connection.abort();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(TIMEOUTS.lingerMs);
    expect(owner.closes).toEqual([]);
  });
});

describe('closed: the host stream\'s final flush', () => {
  it('is bounded by lingerMs: a host stream still open then is destroyed', () => {
    const { host, guest } = established();
    guest.send(Op.Shutdown, { flags: SHUTDOWN_BOTH });
    vi.advanceTimersByTime(TIMEOUTS.lingerMs - 1);
    expect(host.destroyCalls).toBe(0);
    vi.advanceTimersByTime(1);
    expect(host.destroyCalls).toBe(1);
  });

  it('is left alone once the host stream closed', () => {
    const { host, guest } = established();
    guest.send(Op.Shutdown, { flags: SHUTDOWN_BOTH });
    host.emitClose();
    vi.advanceTimersByTime(TIMEOUTS.lingerMs);
    expect(host.destroyCalls).toBe(0);
  });
});

describe('abort (device reset, VM exit)', () => {
  it('drops an established connection without telling anyone', () => {
    const { owner, host, guest, connection } = established();
    host.emitData('never delivered');
    connection.abort();
    expect(connection.state).toBe('closed');
    expect(owner.closes).toEqual([]);
    expect(host.destroyed).toBe(true);
    expect(connection.hasRxWork()).toBe(false);
    expect(guest.receive()).toBeNull();
  });

  it('cancels a connect under way', () => {
    const { owner, connection, attempt } = fromGuest();
    connection.abort();
    expect(attempt.cancelled).toBe(true);
    expect(owner.closes).toEqual([]);
  });

  it('stops the REQUEST deadline', () => {
    const { owner, connection } = fromHost();
    connection.abort();
    vi.advanceTimersByTime(TIMEOUTS.requestMs);
    expect(owner.closes).toEqual([]);
  });
});

describe('the order of packets owed to the guest', () => {
  it('RESPONSE goes before data the host sent at once', () => {
    const { guest, connection } = fromGuest();
    const host = new FakeHostStream();
    connection.hostConnected(host);
    host.emitData('hi');
    expect(guest.receiveAll()).toEqual(['RESPONSE', 'RW hi']);
  });

  it('RESPONSE goes before the SHUTDOWN of a host that ended at once', () => {
    const { guest, connection } = fromGuest();
    const host = new FakeHostStream();
    connection.hostConnected(host);
    host.emitEnd();
    expect(guest.receiveAll()).toEqual(['RESPONSE', `SHUTDOWN ${SHUTDOWN_SEND}`]);
  });

  it('data carries an owed CREDIT_UPDATE: no packet of its own', () => {
    const { host, guest } = established();
    guest.send(Op.CreditRequest);
    host.emitData('x');
    expect(guest.receiveAll()).toEqual(['RW x']);
  });

  it('SHUTDOWN carries an owed CREDIT_UPDATE too', () => {
    const { host, guest } = established();
    guest.send(Op.CreditRequest);
    host.emitEnd();
    expect(guest.receiveAll()).toEqual([`SHUTDOWN ${SHUTDOWN_SEND}`]);
  });

  it('an rx buffer too small for data still takes the control packets after it', () => {
    const { host, guest } = established();
    guest.send(Op.CreditRequest);
    host.emitData('x');
    expect(guest.receiveAll(HEADER_SIZE)).toEqual(['CREDIT_UPDATE']);
    expect(guest.receiveAll()).toEqual(['RW x']);
  });

  it('owes a control packet (served by the muxer before other connections\' data) for REQUEST and RESPONSE', () => {
    const host = fromHost('early');
    expect(host.connection.hasControlRx()).toBe(true);
    expect(host.guest.receiveAll()).toEqual(['REQUEST']);
    expect(host.connection.hasControlRx()).toBe(false);

    const guest = fromGuest();
    expect(guest.connection.hasControlRx()).toBe(false); // still connecting
    guest.connection.hostConnected(new FakeHostStream());
    expect(guest.connection.hasControlRx()).toBe(true);
    expect(guest.guest.receiveAll()).toEqual(['RESPONSE']);
    expect(guest.connection.hasControlRx()).toBe(false);
  });

  it('owes a control packet for SHUTDOWN and CREDIT_UPDATE, but not for data or CREDIT_REQUEST', () => {
    const { host, guest, connection } = established(4);
    host.emitData('0123456789');
    expect(connection.hasRxWork()).toBe(true);
    expect(connection.hasControlRx()).toBe(false);
    expect(guest.receive()!.payload.toString()).toBe('0123');
    expect(connection.hasRxWork()).toBe(true); // its CREDIT_REQUEST, a data packet's turn
    expect(connection.hasControlRx()).toBe(false);
    expect(guest.receiveAll()).toEqual(['CREDIT_REQUEST']);

    guest.send(Op.CreditRequest);
    expect(connection.hasControlRx()).toBe(true);
    expect(guest.receiveAll()).toEqual(['CREDIT_UPDATE']);
    expect(connection.hasControlRx()).toBe(false);

    guest.bufAlloc = 64 * 1024;
    guest.send(Op.CreditUpdate);
    host.emitEnd();
    expect(connection.hasControlRx()).toBe(false); // the data first: SHUTDOWN is owed after the last byte
    expect(guest.receive()!.payload.toString()).toBe('456789');
    expect(connection.hasControlRx()).toBe(true);
    expect(guest.receiveAll()).toEqual([`SHUTDOWN ${SHUTDOWN_SEND}`]);
    expect(connection.hasControlRx()).toBe(false);
  });

  it('a SHUTDOWN withdrawn by the guest\'s SHUTDOWN RCV is no longer owed', () => {
    const { host, guest, connection } = established();
    host.emitEnd();
    expect(connection.hasControlRx()).toBe(true);
    guest.send(Op.Shutdown, { flags: SHUTDOWN_RCV });
    expect(connection.hasControlRx()).toBe(false);
  });
});
