// The line a host program sends on the vsock Unix socket to pick a guest
// port, before its stream starts: "CONNECT <port>\n" (Firecracker's and
// Cloud Hypervisor's hybrid vsock, docs/vsock.md). The line may arrive split
// across several reads; bytes after the newline already belong to the stream.
import type net from 'node:net';
import { MAX_VSOCK_PORT } from './packet.js';

/** The whole line, newline included, must fit in this many bytes. */
export const MAX_CONNECT_LINE = 32;

const NEWLINE = 0x0a;
const KEYWORD = 'connect';

export type HandshakeResult =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'connect'; readonly port: number; readonly rest: Buffer }
  | { readonly kind: 'invalid'; readonly reason: string };

const INCOMPLETE: HandshakeResult = { kind: 'incomplete' };

/**
 * Checks a complete line (without its newline). Accepts what Firecracker
 * accepts: two whitespace-separated words, "connect" in any case and a
 * decimal port up to 2^32-1 (so "CONNECT 52\r" from a CRLF client works).
 */
export function parseConnectLine(line: string): { port: number } | { reason: string } {
  const words = line.trim().split(/\s+/).filter((w) => w.length > 0);
  if (words.length === 0 || words[0]!.toLowerCase() !== KEYWORD) {
    return { reason: `expected "CONNECT <port>", got ${JSON.stringify(line)}` };
  }
  if (words.length === 1) {
    return { reason: 'CONNECT without a port' };
  }
  if (words.length > 2) {
    return { reason: `unexpected text after the port in ${JSON.stringify(line)}` };
  }
  const digits = words[1]!;
  if (!/^[0-9]+$/.test(digits)) {
    return { reason: `the port ${JSON.stringify(digits)} is not a decimal number` };
  }
  const port = Number(digits);
  if (port > MAX_VSOCK_PORT) {
    return { reason: `the port ${digits} is over ${MAX_VSOCK_PORT}` };
  }
  return { port };
}

/** True when `partial` (no newline yet) can still grow into a valid line. */
function couldBecomeValid(partial: string): boolean {
  const words = partial.trimStart().split(/\s+/);
  const first = words[0]!.toLowerCase();
  if (words.length === 1) return KEYWORD.startsWith(first);
  if (first !== KEYWORD) return false;
  if (words.length === 2) return /^[0-9]*$/.test(words[1]!);
  // "connect 52 " may be followed by more whitespace only.
  return words.length === 3 && /^[0-9]+$/.test(words[1]!) && words[2] === '';
}

/** Feeds a client's first bytes until the CONNECT line is complete. One per client. */
export class ConnectHandshake {
  private readonly buffered = Buffer.alloc(MAX_CONNECT_LINE);
  private length = 0;
  private finished = false;

  push(chunk: Buffer): HandshakeResult {
    if (this.finished) {
      throw new Error('ConnectHandshake.push called after the handshake finished');
    }
    const newline = chunk.indexOf(NEWLINE);
    if (newline === -1) {
      if (this.length + chunk.length >= MAX_CONNECT_LINE) {
        return this.finish({ kind: 'invalid', reason: `no newline within the first ${MAX_CONNECT_LINE} bytes` });
      }
      this.length += chunk.copy(this.buffered, this.length);
      const partial = this.buffered.toString('latin1', 0, this.length);
      if (!couldBecomeValid(partial)) {
        return this.finish({ kind: 'invalid', reason: `expected "CONNECT <port>", got ${JSON.stringify(partial)}` });
      }
      return INCOMPLETE;
    }
    if (this.length + newline >= MAX_CONNECT_LINE) {
      return this.finish({ kind: 'invalid', reason: `no newline within the first ${MAX_CONNECT_LINE} bytes` });
    }
    const line = this.buffered.toString('latin1', 0, this.length) + chunk.toString('latin1', 0, newline);
    const parsed = parseConnectLine(line);
    if ('reason' in parsed) {
      return this.finish({ kind: 'invalid', reason: parsed.reason });
    }
    return this.finish({ kind: 'connect', port: parsed.port, rest: chunk.subarray(newline + 1) });
  }

  private finish(result: HandshakeResult): HandshakeResult {
    this.finished = true;
    return result;
  }
}

/** Outcome of reading the CONNECT line from a client socket. */
export type ConnectLineResult =
  | { readonly port: number; readonly rest: Buffer }
  | { readonly reason: string };

/** A CONNECT line being read; cancel() stops reading without calling `done`. */
export interface PendingHandshake {
  cancel(): void;
}

/**
 * Reads the CONNECT line from a freshly accepted client. On success the
 * socket is paused with its own listeners removed, ready for a connection to
 * take over. On failure (bad line, no complete line within `timeoutMs` of
 * the call, or the client left first) the caller closes it. `done` runs
 * exactly once, unless the caller cancels first.
 *
 * The deadline counts from the accept, not from the last byte: a client
 * trickling one byte at a time must not hold its socket any longer than an
 * idle one.
 */
export function readConnectLine(
  socket: net.Socket,
  timeoutMs: number,
  done: (result: ConnectLineResult) => void,
): PendingHandshake {
  const handshake = new ConnectHandshake();
  const stop = (): void => {
    clearTimeout(deadline);
    socket.off('data', onData);
    socket.off('end', onGone);
    socket.off('close', onGone);
    socket.off('error', onGone);
  };
  const finish = (result: ConnectLineResult): void => {
    stop();
    done(result);
  };
  const onData = (chunk: Buffer): void => {
    const result = handshake.push(chunk);
    if (result.kind === 'incomplete') return;
    socket.pause();
    finish(result.kind === 'connect' ? { port: result.port, rest: result.rest } : { reason: result.reason });
  };
  const onGone = (): void => finish({ reason: 'the client closed its connection before sending a complete CONNECT line' });
  const deadline = setTimeout(() => finish({ reason: `no complete CONNECT line within ${timeoutMs} ms` }), timeoutMs);
  // Pending handshakes must not keep a VM that is otherwise done alive.
  deadline.unref();
  socket.on('data', onData);
  socket.once('end', onGone);
  socket.once('close', onGone);
  socket.once('error', onGone);
  return { cancel: stop };
}
