// The host side of one vsock connection, as the connection sees it: a byte
// stream it can write to, end, destroy, pause and cork, and that tells it of
// data, its end, errors and its close. In production that is a Unix socket
// (SocketHostStream); a test drives a connection through a fake one,
// synchronously, without sockets or sleeps.
import type net from 'node:net';

/** What a host stream reports to its connection. */
export interface HostStreamEvents {
  /** Bytes from the host program (only while reading is resumed). */
  data(chunk: Buffer): void;
  /** The host program will send no more (its half-close). */
  end(): void;
  /** The stream failed; 'close' follows. */
  error(): void;
  /** The stream is gone: after both ends finished, or after an error or destroy(). */
  close(): void;
}

export interface HostStream {
  /** Starts reporting to `events`. Reading stays as it is (paused, for a fresh connection). */
  listen(events: HostStreamEvents): void;
  /** Queues bytes for the host program; `done` runs once they are written or the write failed. */
  write(data: Uint8Array | string, done?: (error?: Error | null) => void): void;
  /** Half-closes: sends what is queued, then end of stream. */
  end(): void;
  /** Closes at once, dropping what is queued. */
  destroy(): void;
  readonly destroyed: boolean;
  /** Stops reporting data, so that the host program's writes wait in its socket. */
  pause(): void;
  resume(): void;
  /** Holds writes until uncork(), so that a batch leaves in one writev(). */
  cork(): void;
  uncork(): void;
  /** Bytes the stream itself still holds, read but not reported plus queued but not written. */
  readonly bufferedBytes: number;
}

/** A HostStream over a Node socket (half-open capable, as unix-backend.ts makes them). */
export class SocketHostStream implements HostStream {
  constructor(private readonly socket: net.Socket) {}

  listen(events: HostStreamEvents): void {
    const socket = this.socket;
    socket.on('data', (chunk: Buffer) => events.data(chunk));
    socket.on('end', () => events.end());
    socket.on('error', () => events.error());
    socket.on('close', () => events.close());
  }

  write(data: Uint8Array | string, done?: (error?: Error | null) => void): void {
    this.socket.write(data, done);
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  get destroyed(): boolean {
    return this.socket.destroyed;
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  cork(): void {
    this.socket.cork();
  }

  uncork(): void {
    this.socket.uncork();
  }

  get bufferedBytes(): number {
    const socket = this.socket;
    return socket.destroyed ? 0 : socket.readableLength + socket.writableLength;
  }
}
