// The exec agent's frame codec (src/exec/protocol.ts): what the encoder
// writes byte for byte, and a decoder that gives back the same frames
// however the stream is cut into chunks.
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  encodeFrame, encodeU32Frame, type Frame, FrameDecoder, FrameType, FRAME_HEADER_BYTES, MAX_FRAME_PAYLOAD_BYTES,
  readU32Payload,
} from '../../src/exec/protocol.js';
import { ExecProtocolError } from '../../src/exec/errors.js';

/** Frames as small plain values, for toEqual (which compares large Buffers byte by byte, slowly). */
const plain = (frames: Frame[]) => frames.map(({ type, payload }) =>
  ({ type, length: payload.length, sha256: createHash('sha256').update(payload).digest('hex') }));

/** Feeds `data` to a fresh decoder in pieces of the given sizes (the rest in one last piece). */
function decodeInPieces(data: Buffer, sizes: number[]): Frame[] {
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  let offset = 0;
  for (const size of [...sizes, data.length]) {
    if (offset >= data.length) break;
    frames.push(...decoder.push(data.subarray(offset, offset + size)));
    offset += size;
  }
  expect(decoder.pendingBytes).toBe(0);
  return frames;
}

describe('encodeFrame', () => {
  it('writes [type u8][length u32 LE][payload]', () => {
    expect(encodeFrame(FrameType.STDOUT, Buffer.from('hi'))).toEqual(Buffer.from([0x81, 2, 0, 0, 0, 0x68, 0x69]));
    expect(encodeFrame(FrameType.STDIN_EOF)).toEqual(Buffer.from([0x03, 0, 0, 0, 0]));
  });

  it('writes KILL and EXIT with a u32 LE payload, and reads it back', () => {
    const kill = encodeU32Frame(FrameType.KILL, 9);
    expect(kill).toEqual(Buffer.from([0x04, 4, 0, 0, 0, 9, 0, 0, 0]));
    expect(readU32Payload({ type: FrameType.EXIT, payload: encodeU32Frame(FrameType.EXIT, 0x01020304).subarray(FRAME_HEADER_BYTES) })).toBe(0x01020304);
    expect(readU32Payload({ type: FrameType.EXIT, payload: Buffer.from([1, 2, 3]) })).toBeUndefined();
  });

  it('refuses a payload over the limit', () => {
    expect(() => encodeFrame(FrameType.STDIN, Buffer.alloc(MAX_FRAME_PAYLOAD_BYTES + 1))).toThrow(RangeError);
    expect(encodeFrame(FrameType.STDIN, Buffer.alloc(MAX_FRAME_PAYLOAD_BYTES)).length).toBe(FRAME_HEADER_BYTES + MAX_FRAME_PAYLOAD_BYTES);
  });
});

describe('FrameDecoder', () => {
  const frames = [
    { type: FrameType.STDOUT, payload: Buffer.from('hello\n') },
    { type: FrameType.STDERR, payload: Buffer.alloc(0) },
    { type: FrameType.STDOUT, payload: randomBytes(1000) },
    { type: FrameType.EXIT, payload: Buffer.from([42, 0, 0, 0]) },
  ];
  const stream = Buffer.concat(frames.map(({ type, payload }) => encodeFrame(type, payload)));

  it('decodes many frames from one chunk', () => {
    expect(plain(new FrameDecoder().push(stream))).toEqual(plain(frames));
  });

  it('decodes frames split at every possible byte', () => {
    for (let cut = 1; cut < stream.length; cut++) {
      expect(plain(decodeInPieces(stream, [cut])), `cut at ${cut}`).toEqual(plain(frames));
    }
  });

  it('decodes a stream fed one byte at a time', () => {
    expect(plain(decodeInPieces(stream, Array<number>(stream.length).fill(1)))).toEqual(plain(frames));
  });

  it('returns nothing until a frame is complete, and holds the partial bytes', () => {
    const decoder = new FrameDecoder();
    const frame = encodeFrame(FrameType.STDOUT, Buffer.from('abc'));
    expect(decoder.push(frame.subarray(0, 3))).toEqual([]);
    expect(decoder.pendingBytes).toBe(3);
    expect(decoder.push(frame.subarray(3, 7))).toEqual([]);
    expect(plain(decoder.push(frame.subarray(7)))).toEqual(plain([{ type: FrameType.STDOUT, payload: Buffer.from('abc') }]));
    expect(decoder.pendingBytes).toBe(0);
  });

  it('decodes large payloads, whole or in the pieces a socket delivers', () => {
    const big = [randomBytes(MAX_FRAME_PAYLOAD_BYTES), randomBytes(300_000), randomBytes(MAX_FRAME_PAYLOAD_BYTES - 1)];
    const data = Buffer.concat(big.map((payload) => encodeFrame(FrameType.STDOUT, payload)));
    const expected = plain(big.map((payload) => ({ type: FrameType.STDOUT, payload })));
    expect(plain(new FrameDecoder().push(data))).toEqual(expected);
    expect(plain(decodeInPieces(data, Array<number>(Math.ceil(data.length / 65_536)).fill(65_536)))).toEqual(expected);
    expect(plain(decodeInPieces(data, Array<number>(1000).fill(7_777)))).toEqual(expected);
  });

  it('keeps a frame type it does not know (the caller decides)', () => {
    expect(plain(new FrameDecoder().push(Buffer.from([0x7f, 1, 0, 0, 0, 0xaa])))).toEqual(plain([{ type: 0x7f, payload: Buffer.from([0xaa]) }]));
  });

  it('refuses a frame longer than the limit as soon as its header arrives', () => {
    const header = Buffer.alloc(FRAME_HEADER_BYTES);
    header.writeUInt8(FrameType.STDOUT, 0);
    header.writeUInt32LE(MAX_FRAME_PAYLOAD_BYTES + 1, 1);
    const decoder = new FrameDecoder();
    expect(decoder.push(header.subarray(0, 2))).toEqual([]);
    expect(() => decoder.push(header.subarray(2))).toThrow(ExecProtocolError);
    // What another protocol's first bytes look like: an HTTP request.
    expect(() => new FrameDecoder().push(Buffer.from('GET / HTTP/1.1\r\n'))).toThrow(/over the limit/);
  });
});
