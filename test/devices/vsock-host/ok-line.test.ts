// The "OK <host port>\n" reader: a socket read can end anywhere in the line,
// and the stream's first bytes can arrive in the same read as its end.
import { describe, expect, it } from 'vitest';
import { OkLineReader, type OkLineResult } from '../../../src/vsock-host/ok-line.js';

const LINE = 'OK 1073741824\n';
const DATA = 'first bytes from the guest';

/** Feeds `pieces` in turn; returns the result that ended the line (or 'incomplete'). */
function feed(pieces: string[]): OkLineResult {
  const reader = new OkLineReader();
  for (const piece of pieces) {
    const result = reader.push(Buffer.from(piece, 'latin1'));
    if (result.kind !== 'incomplete') return result;
  }
  return { kind: 'incomplete' };
}

function expectOk(result: OkLineResult, rest: string): void {
  expect(result.kind).toBe('ok');
  if (result.kind !== 'ok') return;
  expect(result.hostPort).toBe(1073741824);
  expect(result.rest.toString('latin1')).toBe(rest);
}

describe('OkLineReader', () => {
  it('takes the line and the data after it from one chunk', () => {
    expectOk(feed([LINE + DATA]), DATA);
  });

  it.each(Array.from({ length: LINE.length - 1 }, (_, i) => i + 1))('takes the line split after byte %i, data with the second piece', (at) => {
    const whole = LINE + DATA;
    expectOk(feed([whole.slice(0, at), whole.slice(at)]), DATA);
  });

  it('takes the line one byte at a time, the data in the last byte\'s chunk', () => {
    const pieces = [...LINE.slice(0, -1)].concat([`\n${DATA}`]);
    expectOk(feed(pieces), DATA);
  });

  it('gives no data when the line ends its chunk', () => {
    expectOk(feed([LINE]), '');
  });

  it('accepts the largest port', () => {
    const result = feed(['OK 4294967295\n']);
    expect(result).toMatchObject({ kind: 'ok', hostPort: 4294967295 });
  });

  it.each([
    // what, the bytes sent, what the reader had seen when it gave up (the line, without its newline)
    ['another protocol', 'HTTP/1.1 400 Bad Request\r\n', 'H'],
    ['lower case', 'ok 5\n', 'o'],
    ['no port', 'OK \n', 'OK '],
    ['a port over 2^32-1', 'OK 4294967296\n', 'OK 4294967296'],
    ['text after the port', 'OK 5 x\n', 'OK 5 '],
    ['no newline within the longest line', 'OK 123456789012', 'OK 12345678901'],
  ])('refuses %s, as soon as it cannot become an OK line', (_, text, received) => {
    const reader = new OkLineReader();
    const results = [...text].map((byte) => reader.push(Buffer.from(byte, 'latin1')));
    const refusedAt = results.findIndex((r) => r.kind !== 'incomplete');
    expect(results[refusedAt]).toEqual({ kind: 'invalid', received });
    // Byte by byte, the reader gives up on the first byte that rules an OK line out (a newline ends the line).
    expect(text.slice(0, refusedAt + 1).replace(/\n$/, '')).toBe(received);
  });
});
