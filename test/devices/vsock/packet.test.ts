import { describe, expect, it } from 'vitest';
import {
  HEADER_SIZE, Op, SHUTDOWN_BOTH, decodeHeader, encodeHeader, opName,
} from '../../../src/devices/virtio/vsock/packet.js';

describe('vsock packet header codec', () => {
  const header = {
    srcCid: 3, dstCid: 2, srcPort: 0x11223344, dstPort: 1234, len: 0x1000, type: 1,
    op: Op.Shutdown, flags: SHUTDOWN_BOTH, bufAlloc: 0x40000, fwdCnt: 0xfffffffe,
  };
  // struct virtio_vsock_hdr, little-endian, packed.
  const bytes = Uint8Array.from([
    3, 0, 0, 0, 0, 0, 0, 0, //      src_cid  le64
    2, 0, 0, 0, 0, 0, 0, 0, //      dst_cid  le64
    0x44, 0x33, 0x22, 0x11, //      src_port le32
    0xd2, 0x04, 0, 0, //            dst_port le32
    0, 0x10, 0, 0, //               len      le32
    1, 0, //                        type     le16
    4, 0, //                        op       le16
    3, 0, 0, 0, //                  flags    le32
    0, 0, 4, 0, //                  buf_alloc le32
    0xfe, 0xff, 0xff, 0xff, //      fwd_cnt  le32
  ]);

  it('is 44 bytes', () => {
    expect(HEADER_SIZE).toBe(44);
    expect(bytes.length).toBe(44);
  });

  it('encodes every field at its offset', () => {
    const out = new Uint8Array(44);
    encodeHeader(header, out);
    expect([...out]).toEqual([...bytes]);
  });

  it('decodes what it encodes', () => {
    expect(decodeHeader(bytes)).toEqual(header);
  });

  it('reads the upper half of a 64-bit CID', () => {
    const wide = bytes.slice();
    wide[4] = 1; // src_cid = 2^32 + 3
    expect(decodeHeader(wide).srcCid).toBe(2 ** 32 + 3);
    const out = new Uint8Array(44);
    encodeHeader({ ...header, dstCid: 2 ** 32 + 7 }, out);
    expect([...out.subarray(8, 16)]).toEqual([7, 0, 0, 0, 1, 0, 0, 0]);
  });

  it('decodes a header that sits inside a larger buffer', () => {
    const big = new Uint8Array(100);
    big.set(bytes, 10);
    expect(decodeHeader(big.subarray(10))).toEqual(header);
  });

  it('refuses buffers shorter than a header', () => {
    expect(() => decodeHeader(new Uint8Array(43))).toThrow(RangeError);
    expect(() => encodeHeader(header, new Uint8Array(43))).toThrow(RangeError);
  });

  it('uses the op numbers of include/uapi/linux/virtio_vsock.h', () => {
    expect(Op).toEqual({
      Invalid: 0, Request: 1, Response: 2, Rst: 3, Shutdown: 4, Rw: 5, CreditUpdate: 6, CreditRequest: 7,
    });
    expect(opName(Op.CreditRequest)).toBe('CREDIT_REQUEST');
    expect(opName(42)).toBe('op 42');
  });
});
