import { describe, expect, it } from 'vitest';
import { ConnectHandshake, MAX_CONNECT_LINE, parseConnectLine } from '../../../src/devices/virtio/vsock/connect-handshake.js';

function feed(...chunks: string[]) {
  const handshake = new ConnectHandshake();
  let result;
  for (const chunk of chunks) {
    result = handshake.push(Buffer.from(chunk, 'latin1'));
    if (result.kind !== 'incomplete') return result;
  }
  return result!;
}

describe('CONNECT line parser', () => {
  it('accepts "CONNECT <port>\\n" in one read', () => {
    const result = feed('CONNECT 1234\n');
    expect(result).toEqual({ kind: 'connect', port: 1234, rest: Buffer.alloc(0) });
  });

  it('is case-insensitive and keeps the bytes after the newline', () => {
    const result = feed('cOnNeCt 52\nHello\nfrom host');
    expect(result.kind).toBe('connect');
    if (result.kind !== 'connect') return;
    expect(result.port).toBe(52);
    expect(result.rest.toString()).toBe('Hello\nfrom host');
  });

  it('reassembles a line split across many reads', () => {
    const result = feed('C', 'ON', 'NECT', ' ', '4', '2', '\nda', 'ta');
    expect(result.kind).toBe('connect');
    if (result.kind !== 'connect') return;
    expect(result.port).toBe(42);
    expect(result.rest.toString()).toBe('da');
  });

  it('accepts CRLF and extra blanks, and the largest port', () => {
    expect(feed('CONNECT   4294967295 \r\n')).toMatchObject({ kind: 'connect', port: 4294967295 });
    expect(feed('connect 0\n')).toMatchObject({ kind: 'connect', port: 0 });
  });

  it.each([
    ['garbage', 'GET / HTTP/1.1\r\n'],
    ['no port', 'CONNECT\n'],
    ['a blank port', 'CONNECT  \n'],
    ['a port over 2^32-1', 'CONNECT 4294967296\n'],
    ['a negative port', 'CONNECT -1\n'],
    ['a hex port', 'CONNECT 0x10\n'],
    ['words after the port', 'CONNECT 52 now\n'],
    ['an empty line', '\n'],
    // The rest of Cloud Hypervisor's table (virtio-devices/src/vsock/unix/muxer.rs tests).
    ['a cut-off keyword', 'CONN\n'],
    ['a lower-case keyword with a blank port', 'connect \n'],
    ['a large negative port', 'connect -1337\n'],
    ['a port of 2^33', 'connect 8589934592\n'],
    // feed() sends each character as one byte: these are the UTF-8 bytes of Arabic-Indic 1 and 2.
    ['a port in non-ASCII digits', Buffer.from('connect \u0661\u0662\n', 'utf8').toString('latin1')],
  ])('rejects %s', (_, line) => {
    expect(feed(line).kind).toBe('invalid');
  });

  it('rejects garbage before any newline arrives', () => {
    expect(feed('HELLO').kind).toBe('invalid');
    expect(feed('CONNECT x').kind).toBe('invalid');
    expect(feed('CONNEC').kind).toBe('incomplete');
    expect(feed('CONNECT 12 ').kind).toBe('incomplete');
  });

  it('rejects a line with no newline within 32 bytes', () => {
    expect(MAX_CONNECT_LINE).toBe(32);
    const padded = 'CONNECT' + ' '.repeat(24); // 31 bytes, still plausible
    expect(feed(padded).kind).toBe('incomplete');
    expect(feed(padded, ' ')).toMatchObject({ kind: 'invalid', reason: 'no newline within the first 32 bytes' });
    // The newline may be byte 32, not byte 33.
    expect(feed('CONNECT' + ' '.repeat(23) + '7\n').kind).toBe('connect');
    expect(feed('CONNECT' + ' '.repeat(24) + '7\n').kind).toBe('invalid');
    expect(feed('CONNECT' + ' '.repeat(23) + '7', '\n').kind).toBe('connect');
    expect(feed('CONNECT' + ' '.repeat(23) + '77', '\n').kind).toBe('invalid');
  });

  it('refuses to be fed after it finished', () => {
    const handshake = new ConnectHandshake();
    handshake.push(Buffer.from('CONNECT 1\n'));
    expect(() => handshake.push(Buffer.from('x'))).toThrow(/after the handshake finished/);
  });

  it('explains what is wrong', () => {
    expect(parseConnectLine('CONNECT')).toEqual({ reason: 'CONNECT without a port' });
    expect(parseConnectLine('CONNECT 99999999999')).toEqual({ reason: 'the port 99999999999 is over 4294967295' });
  });
});
