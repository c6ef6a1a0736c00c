// The line tsvmm sends a host program once the guest accepted its CONNECT:
// "OK <host port>\n" (the hybrid vsock contract of Firecracker's and Cloud
// Hypervisor's docs/vsock.md). A socket read may end anywhere: inside the
// line, or past it, with the first bytes the guest sent. Those bytes are the
// stream's and must reach the caller, so the reader hands them back.

import { MAX_VSOCK_PORT } from '../devices/virtio/vsock/packet.js';

const NEWLINE = 0x0a;
const PREFIX = 'OK ';
/** The longest line a well-behaved peer sends: "OK 4294967295\n". */
const MAX_LINE_BYTES = `${PREFIX}${MAX_VSOCK_PORT}\n`.length;

export type OkLineResult =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'ok'; readonly hostPort: number; readonly rest: Buffer }
  /** Not an OK line; `received` is what came, for the error message. */
  | { readonly kind: 'invalid'; readonly received: string };

const INCOMPLETE: OkLineResult = { kind: 'incomplete' };

/** True when `partial` (no newline yet) can still become "OK <digits>". */
function couldBecomeOkLine(partial: string): boolean {
  if (partial.length <= PREFIX.length) return PREFIX.startsWith(partial);
  return partial.startsWith(PREFIX) && /^[0-9]+$/.test(partial.slice(PREFIX.length));
}

/** Reads the OK line from the chunks a socket delivers. One per connect. */
export class OkLineReader {
  private readonly line = Buffer.alloc(MAX_LINE_BYTES);
  private length = 0;

  /** Feeds the next chunk; once the result is not 'incomplete' the reader is done. */
  push(chunk: Buffer): OkLineResult {
    const newline = chunk.indexOf(NEWLINE);
    const lineBytes = newline === -1 ? chunk.length : newline;
    // Room for the newline too: a line that cannot fit is no OK line, however it continues.
    if (this.length + lineBytes >= MAX_LINE_BYTES) return this.invalid(chunk, lineBytes);
    this.length += chunk.copy(this.line, this.length, 0, lineBytes);
    const text = this.line.toString('latin1', 0, this.length);
    if (newline === -1) return couldBecomeOkLine(text) ? INCOMPLETE : this.invalid(chunk, 0);
    const match = /^OK ([0-9]+)$/.exec(text);
    const hostPort = match === null ? NaN : Number(match[1]);
    if (!(hostPort <= MAX_VSOCK_PORT)) return this.invalid(chunk, 0);
    return { kind: 'ok', hostPort, rest: chunk.subarray(newline + 1) };
  }

  private invalid(chunk: Buffer, unbuffered: number): OkLineResult {
    const received = this.line.toString('latin1', 0, this.length) + chunk.toString('latin1', 0, Math.min(unbuffered, MAX_LINE_BYTES));
    return { kind: 'invalid', received };
  }
}
