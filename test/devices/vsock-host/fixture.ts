// What every VsockHost test starts from: the real vsock device with its Unix
// socket, a simulated guest driving it (guest-sockets.ts), and a VsockHost on
// that socket. Also small socket helpers the tests share.
import { readdirSync } from 'node:fs';
import type net from 'node:net';
import { HEADER_SIZE } from '../../../src/devices/virtio/vsock/packet.js';
import { VsockHost } from '../../../src/vsock-host/index.js';
import { VsockTestGuest } from '../../helpers/vsock-guest.js';
import { GuestSockets } from './guest-sockets.js';

export interface VsockFixture {
  readonly guest: VsockTestGuest;
  readonly sockets: GuestSockets;
  readonly vsock: VsockHost;
  close(): Promise<void>;
}

export async function startVsockFixture(): Promise<VsockFixture> {
  // 16 KiB rx buffers keep the number of packets (and the test's time) down for multi-MiB streams.
  const guest = await VsockTestGuest.start({ rxBufferSize: 16 * 1024 + HEADER_SIZE, memorySize: 64 << 20 });
  const sockets = new GuestSockets(guest);
  const vsock = new VsockHost(guest.socketPath);
  return {
    guest, sockets, vsock,
    async close() {
      await vsock.close();
      await sockets.stop();
      await guest.close();
    },
  };
}

/** Everything a socket delivers until its end (or close). */
export function readAll(socket: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('close', () => resolve(Buffer.concat(chunks)));
    socket.once('error', reject);
  });
}

/** Open file descriptors of this process. */
export function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Resolves after the event loop went round twice: whatever was written before has been read by then. */
export async function twoLoopTurns(): Promise<void> {
  // An immediate queued from the check phase runs in the next iteration, after its poll phase.
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
}
