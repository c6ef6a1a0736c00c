// The wire format between the host and tsvmm-agent, the guest's exec agent
// (docs/exec-agent.md). One stream per command carries frames both ways:
//
//   [type u8][payload length u32 little-endian][payload]
//
// The agent, guest-images/agent/tsvmm-agent.c, defines the same numbers on
// its side; a change here must be made there too.
import { ExecProtocolError } from './errors.js';

/** The guest vsock port tsvmm-agent listens on unless started with `--port`. */
export const AGENT_VSOCK_PORT = 52;

/** Frame types: below 0x80 the host sends them, from 0x80 the agent does. */
export const FrameType = {
  /** host: the command line, run as `/bin/sh -c`; the first frame, sent once. */
  EXEC: 0x01,
  /** host: bytes for the command's stdin. */
  STDIN: 0x02,
  /** host: no more stdin; the command reads end of file. Empty payload. */
  STDIN_EOF: 0x03,
  /** host: a signal for the command's whole process group, as a u32 LE payload. */
  KILL: 0x04,
  /** agent: bytes the command wrote to stdout. */
  STDOUT: 0x81,
  /** agent: bytes the command wrote to stderr. */
  STDERR: 0x82,
  /** agent: the exit status as a u32 LE payload (128 + n after signal n); the last frame. */
  EXIT: 0x83,
  /** agent: why it refused the request, in UTF-8; the last frame. */
  ERROR: 0x84,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** One type byte and a u32 length. */
export const FRAME_HEADER_BYTES = 5;

/** The largest payload either side accepts; a longer frame ends the connection. */
export const MAX_FRAME_PAYLOAD_BYTES = 1 << 20;

/** A decoded frame; `type` is as received, which may be a type this side does not know. */
export interface Frame {
  readonly type: number;
  readonly payload: Buffer;
}

/** Encodes one frame; throws RangeError for a payload over MAX_FRAME_PAYLOAD_BYTES. */
export function encodeFrame(type: FrameType, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  if (payload.length > MAX_FRAME_PAYLOAD_BYTES) {
    throw new RangeError(`a frame payload of ${payload.length} bytes is over the limit of ${MAX_FRAME_PAYLOAD_BYTES}`);
  }
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  frame.writeUInt8(type, 0);
  frame.writeUInt32LE(payload.length, 1);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

/** Encodes a frame whose payload is one u32 (KILL, EXIT). */
export function encodeU32Frame(type: FrameType, value: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32LE(value, 0);
  return encodeFrame(type, payload);
}

/** The u32 payload of a KILL or EXIT frame, or undefined when it is not 4 bytes long. */
export function readU32Payload(frame: Frame): number | undefined {
  return frame.payload.length === 4 ? frame.payload.readUInt32LE(0) : undefined;
}

/**
 * Turns a byte stream back into frames, whatever the chunks: a frame may
 * arrive split over many chunks, and a chunk may hold many frames.
 */
export class FrameDecoder {
  /** Bytes received that do not make a whole frame yet. */
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  /** How many buffered bytes the next frame needs: its header, then all of it. */
  private wanted = FRAME_HEADER_BYTES;

  /**
   * Takes the next chunk of the stream and returns the frames it completes,
   * in order. Throws ExecProtocolError for a frame longer than
   * MAX_FRAME_PAYLOAD_BYTES (the stream cannot be trusted after that).
   */
  push(chunk: Buffer): Frame[] {
    this.buffered.push(chunk);
    this.bufferedBytes += chunk.length;
    const frames: Frame[] = [];
    // A large frame arriving in pieces is copied together once, when its
    // last piece comes, not once per piece.
    if (this.bufferedBytes < this.wanted) return frames;
    let data = this.buffered.length === 1 ? this.buffered[0]! : Buffer.concat(this.buffered, this.bufferedBytes);
    let offset = 0;
    this.wanted = FRAME_HEADER_BYTES;
    while (data.length - offset >= FRAME_HEADER_BYTES) {
      const length = data.readUInt32LE(offset + 1);
      if (length > MAX_FRAME_PAYLOAD_BYTES) {
        throw new ExecProtocolError(`a frame of ${length} bytes is over the limit of ${MAX_FRAME_PAYLOAD_BYTES}`);
      }
      const end = offset + FRAME_HEADER_BYTES + length;
      if (end > data.length) {
        this.wanted = FRAME_HEADER_BYTES + length;
        break;
      }
      frames.push({ type: data[offset]!, payload: data.subarray(offset + FRAME_HEADER_BYTES, end) });
      offset = end;
    }
    data = data.subarray(offset);
    this.buffered = data.length > 0 ? [data] : [];
    this.bufferedBytes = data.length;
    return frames;
  }

  /** Bytes of an incomplete frame still held (0 between frames). */
  get pendingBytes(): number {
    return this.bufferedBytes;
  }
}
