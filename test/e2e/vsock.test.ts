// virtio-vsock end to end: a real Linux guest, real socat on both sides,
// tsvmm's Unix-socket backend in between (issue 5's "done when").
//
// ONE guest serves every check, in this order (the guest script below runs
// its steps one after the other; the host waits for each step's sign):
//   1. guest -> host: "Hello from guest!" to a host socat on <socket>_1234;
//   2. host -> guest: the guest's socat listens on 1234 and prints what the
//      host's socat sends on the console;
//   3. guest-initiated: 50 guest socat clients at once, 1 MiB of random
//      data each, echoed by a Node server on <socket>_6000, compared by sha256;
//   4. host-initiated: the guest runs an echo server on port 5000; the host
//      opens 50 connections at once, 1 MiB each, compared by sha256;
//   5. 100 host connections dropped mid-transfer, then check 4 again on the
//      same VM; the guest reports no echo process left behind and exits 0.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imagesBuilt } from '../helpers/guest-images.js';
import type { ProcessResult } from '../helpers/run-process.js';
import { startTsvmm, type RunningTsvmm } from '../helpers/tsvmm.js';
import {
  abortMidTransfer, echoThroughGuest, serveText, sha256, socatConnectWhenListening, socatListenOnce,
  startEchoServer, waitUntilGuestListens, type EchoServer,
} from '../helpers/vsock-host.js';

const MiB = 1024 * 1024;
const CONNECTIONS = 50;
const ABORTED_CONNECTIONS = 100;
/** The guest echo server's listen backlog: room for every connection of steps 4 and 5 at once. */
const ECHO_BACKLOG = ABORTED_CONNECTIONS + CONNECTIONS;
const FIRST_HOST_PORT = 2 ** 30; // host-initiated connections get ports from 2^30 (Firecracker's choice)
/** struct timeval { tv_sec = 30, tv_usec = 0 } in little-endian hex, for socat's setsockopt. */
const CONNECT_TIMEOUT_30S = '1e00000000000000' + '0000000000000000';

/**
 * The guest's side. The kernel hands init at most 32 words (and panics
 * beyond), so the command line only fetches this script over vsock from the
 * host (<socket>_999) and runs it. Each step prints a line the host waits
 * for or checks.
 */
const guestScript = `
# 1. guest -> host
echo 'Hello from guest!' | socat - VSOCK-CONNECT:2:1234
# 2. host -> guest: what arrives goes to the console
socat -u VSOCK-LISTEN:1234 -
# 3. guest-initiated echoes: ${CONNECTIONS} clients at once.
#    -t 60: after sending, wait up to 60 s for the rest of the echo.
#    Linux gives a vsock connect() 2 s (guest time) before ETIMEDOUT; a guest
#    busy with ${CONNECTIONS} streams under emulation can take longer to even
#    send its REQUEST, so each client asks for 30 s: SO_VM_SOCKETS_CONNECT_TIMEOUT
#    (level AF_VSOCK 40, option 6, a struct timeval of two 64-bit words).
#    socat's setsockopt= applies only once connected (too late); its
#    setsockopt-listen= applies before bind and connect, on any socket.
cd /tmp
for i in $(seq ${CONNECTIONS}); do head -c ${MiB} /dev/urandom > in$i; done
echo 'guest clients start'
for i in $(seq ${CONNECTIONS}); do
  socat -t 60 - VSOCK-CONNECT:2:6000,setsockopt-listen=40:6:x${CONNECT_TIMEOUT_30S} < in$i > out$i &
done
wait
same=0
for i in $(seq ${CONNECTIONS}); do
  if [ "$(sha256sum < in$i)" = "$(sha256sum < out$i)" ]; then
    same=$((same + 1))
  else
    echo "guest client $i: sent $(wc -c < in$i) bytes, got back $(wc -c < out$i): $(cmp in$i out$i 2>&1)"
  fi
done
echo "guest-initiated: $same of ${CONNECTIONS} echoes identical"
# 4. and 5. the echo server for the host. Its backlog holds every connection of
#    4 and 5 at once: the ${ABORTED_CONNECTIONS} aborted ones stay in the accept queue until socat
#    accepts them (one fork each, slow on a loaded machine), and the ${CONNECTIONS} of the
#    check after them may arrive meanwhile; a full queue answers RST (refused).
#    Its children report the aborted connections as broken pipes: not news.
socat -t 60 VSOCK-LISTEN:5000,fork,backlog=${ECHO_BACKLOG} EXEC:cat 2>/dev/null &
# The host says when it is done; then no cat (one per live echo connection) may be left.
socat -u VSOCK-LISTEN:1999 -
for t in $(seq 30); do
  [ "$(pidof cat)" = "" ] && break
  sleep 1
done
echo "echo-processes-left: $(pidof cat | wc -w)"
`;

/** The guest's kernel command line: fetch the script from the host, run it. */
const guestCommandLine = 'quiet -- socat -u VSOCK-CONNECT:2:999 CREATE:/tmp/test.sh && sh /tmp/test.sh';

/** 50 host programs at once, each sends 1 MiB of random bytes to the guest echo server and reads it back. */
async function concurrentHostEchoes(socketPath: string) {
  const payloads = Array.from({ length: CONNECTIONS }, () => randomBytes(MiB));
  const started = Date.now();
  const results = await Promise.all(payloads.map((payload) => echoThroughGuest(socketPath, 5000, payload)));
  console.log(`host-initiated: ${CONNECTIONS} x 1 MiB echoed in ${Date.now() - started} ms`);
  return {
    expected: payloads.map(sha256),
    received: results.map((r) => sha256(r.echoed)),
    lengths: results.map((r) => r.echoed.length),
    hostPorts: results.map((r) => r.hostPort),
  };
}

describe.skipIf(!imagesBuilt)('virtio-vsock with a real guest and socat', () => {
  let dir: string;
  let socketPath: string;
  let vm: RunningTsvmm;
  let greeting: Promise<ProcessResult>;
  let echoServer: EchoServer;
  let scriptServer: net.Server;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsvmm-e2e-vsock-'));
    socketPath = join(dir, 'v.sock');
    // Host listeners first: the guest connects to them as soon as it boots.
    scriptServer = await serveText(`${socketPath}_999`, guestScript);
    greeting = socatListenOnce(`${socketPath}_1234`);
    echoServer = await startEchoServer(`${socketPath}_6000`);
    vm = startTsvmm(['--vsock', `cid=3,socket=${socketPath}`, '--memory', 'size=512M', '--cmdline', guestCommandLine]);
  });

  afterAll(async () => {
    vm?.child.kill('SIGKILL');
    await echoServer?.close();
    scriptServer?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('guest -> host: the host socat receives "Hello from guest!"', async () => {
    const result = await greeting;
    expect(result.timedOut).toBe(false);
    expect(result.stdout).toBe('Hello from guest!\n');
  });

  it('host -> guest: the host socat gets "OK <port>", the guest prints "Hello from host!"', async () => {
    const result = await socatConnectWhenListening(socketPath, 1234, 'Hello from host!\n');
    const port = Number(/^OK (\d+)\n$/.exec(result.stdout)?.[1]);
    expect(result.stdout).toBe(`OK ${port}\n`);
    expect(port).toBeGreaterThanOrEqual(FIRST_HOST_PORT);
    await vm.waitForOutput(/^Hello from host!\r?\n/m, 30_000);
  });

  it(`guest-initiated: ${CONNECTIONS} concurrent guest clients, 1 MiB each, echoed by the host`, async () => {
    await vm.waitForOutput(/^guest clients start\r?\n/m, 120_000);
    const started = Date.now();
    const [summary] = await vm.waitForOutput(/^guest-initiated: [^\r\n]*\r?\n/m, 240_000);
    console.log(`guest-initiated: ${CONNECTIONS} x 1 MiB echoed and compared in ${Date.now() - started} ms`);
    // Both sides at once, so that a failure shows whether the bytes were lost on the way out or back.
    expect({
      summary: summary.trimEnd(),
      bytesEchoedByHost: echoServer.connectionBytes,
      guestComplaints: vm.output().match(/^(guest client \d+:|\S+ \S+ socat\[\d+\] [EF] ).*$/gm) ?? [],
    }).toEqual({
      summary: `guest-initiated: ${CONNECTIONS} of ${CONNECTIONS} echoes identical`,
      bytesEchoedByHost: new Array(CONNECTIONS).fill(MiB),
      guestComplaints: [],
    });
  });

  it(`host-initiated: ${CONNECTIONS} concurrent host connections, 1 MiB each, echoed by the guest`, async () => {
    await waitUntilGuestListens(socketPath, 5000);
    const { expected, received, lengths, hostPorts } = await concurrentHostEchoes(socketPath);
    expect(lengths).toEqual(new Array(CONNECTIONS).fill(MiB));
    expect(received).toEqual(expected);
    expect(new Set(hostPorts).size).toBe(CONNECTIONS);
  });

  it(`${ABORTED_CONNECTIONS} host connections dropped mid-transfer leave the guest and tsvmm working`, async () => {
    const accepted = await Promise.all(
      Array.from({ length: ABORTED_CONNECTIONS }, () => abortMidTransfer(socketPath, 5000, 256 * 1024)));
    expect(accepted.filter(Boolean).length).toBe(ABORTED_CONNECTIONS);

    const { expected, received, lengths } = await concurrentHostEchoes(socketPath);
    expect(lengths).toEqual(new Array(CONNECTIONS).fill(MiB));
    expect(received).toEqual(expected);
  });

  it('the guest has no echo process left, exits 0, and tsvmm exits 0', async () => {
    const done = await socatConnectWhenListening(socketPath, 1999, 'host-done\n');
    expect(done.stdout).toMatch(/^OK \d+\n$/);
    const [left] = await vm.waitForOutput(/^echo-processes-left: [^\r\n]*\r?\n/m, 60_000);
    expect(left.trimEnd()).toBe('echo-processes-left: 0');
    await vm.waitForOutput(/^tsvmm-guest: exit 0\r?\n/m, 30_000);
    expect(await vm.exit(30_000)).toBe(0);
  });
});
