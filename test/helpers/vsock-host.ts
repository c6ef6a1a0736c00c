// Host-side helpers for the vsock end-to-end tests: what a host program does
// with tsvmm's Unix sockets (Firecracker / Cloud Hypervisor hybrid vsock).
//
//   host -> guest: socat with the README's own CONNECT line, or the
//                  library's VsockHost, which does the CONNECT/OK handshake;
//   guest -> host: listen on "<socket>_<port>", tsvmm connects there.
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { VsockConnectError, VsockHost, VsockRefusedError } from '../../src/vsock-host/index.js';
import { runProcess, type ProcessResult } from './run-process.js';

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `printf 'CONNECT <port>\n<payload>' | socat - UNIX-CONNECT:<path>`: what the README tells users to type. */
export function socatConnect(socketPath: string, port: number, payload: string, timeoutMs = 30_000): Promise<ProcessResult> {
  // -t 5: after sending, wait up to 5 s for what the guest sends back before closing.
  return runProcess('socat', ['-t', '5', '-', `UNIX-CONNECT:${socketPath}`], {
    input: `CONNECT ${port}\n${payload}`, timeoutMs,
  });
}

/**
 * Runs socatConnect until the guest answers with an OK line: before the
 * guest listens, its kernel answers our REQUEST with RST and tsvmm closes the
 * connection without one, so we try again.
 */
export async function socatConnectWhenListening(
  socketPath: string, port: number, payload: string, deadlineMs = 60_000,
): Promise<ProcessResult & { attempts: number }> {
  const deadline = Date.now() + deadlineMs;
  for (let attempts = 1; ; attempts++) {
    const result = await socatConnect(socketPath, port, payload);
    if (/^OK \d+\n/.test(result.stdout) || Date.now() > deadline) return { ...result, attempts };
    await pause(200);
  }
}

/** `socat -u UNIX-LISTEN:<path> -`: resolves with everything the first client sent. */
export function socatListenOnce(path: string, timeoutMs = 120_000): Promise<ProcessResult> {
  return runProcess('socat', ['-u', `UNIX-LISTEN:${path}`, '-'], { timeoutMs });
}

export interface EchoResult {
  hostPort: number;
  /** What came back, up to the guest's end of stream. */
  echoed: Buffer;
}

/**
 * One host program, through the library (src/vsock-host: the CONNECT/OK
 * handshake is its business, not the tests'): connect to `guestPort`, write
 * `data`, half-close, read until the guest ends the stream. Rejects with the
 * library's typed error when the guest does not accept, or on a socket error.
 */
export async function echoThroughGuest(socketPath: string, guestPort: number, data: Buffer): Promise<EchoResult> {
  const socket = await new VsockHost(socketPath).connect(guestPort, { allowHalfOpen: true, timeoutMs: 60_000 });
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      socket.destroy();
      resolve({ hostPort: socket.hostPort, echoed: Buffer.concat(chunks) });
    });
    socket.end(data);
  });
}

/** Connects to `guestPort` until the guest accepts (then closes the connection): the guest is listening. */
export async function waitUntilGuestListens(socketPath: string, guestPort: number, deadlineMs = 60_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  const vsock = new VsockHost(socketPath);
  for (;;) {
    try {
      (await vsock.connect(guestPort)).destroy();
      return;
    } catch (error) {
      if (!(error instanceof VsockRefusedError) || Date.now() > deadline) throw error;
      await pause(200);
    }
  }
}

/**
 * A host program that connects, sends `sendBytes` once the guest accepted
 * and drops the connection as soon as the last byte left (destroy, no end():
 * an abort, while the echo is still flowing back). Resolves once the socket
 * is gone: true if the guest had accepted, false if it refused.
 */
export async function abortMidTransfer(socketPath: string, guestPort: number, sendBytes: number): Promise<boolean> {
  let socket;
  try {
    socket = await new VsockHost(socketPath).connect(guestPort, { timeoutMs: 60_000 });
  } catch (error) {
    if (error instanceof VsockConnectError) return false;
    throw error;
  }
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.write(randomBytes(sendBytes), () => socket.destroy());
  await closed;
  return true;
}

export interface EchoServer {
  /** Bytes each finished connection carried, in the order they finished. */
  readonly connectionBytes: number[];
  close(): Promise<void>;
}

/** A host listener on `path` that sends every connection's bytes back and ends when the client ends. */
export function startEchoServer(path: string): Promise<EchoServer> {
  const connectionBytes: number[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    let bytes = 0;
    socket.on('data', (chunk: Buffer) => { bytes += chunk.length; });
    socket.on('error', () => {});
    socket.on('close', () => {
      sockets.delete(socket);
      connectionBytes.push(bytes);
    });
    socket.pipe(socket); // ends our side once the client's end and every byte went back
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path }, () => resolve({
      connectionBytes,
      close: () => new Promise<void>((done) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => done());
      }),
    }));
  });
}

/** A host listener on `path` that sends `text` to each client and ends the stream (e.g. a script for the guest). */
export function serveText(path: string, text: string): Promise<net.Server> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.end(text);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path }, () => resolve(server));
  });
}
