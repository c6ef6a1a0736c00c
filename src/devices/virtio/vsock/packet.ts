// The virtio-vsock packet header: 44 bytes, little-endian, at the start of
// every buffer on the rx and tx queues (virtio 1.x spec 5.10.6, struct
// virtio_vsock_hdr in include/uapi/linux/virtio_vsock.h). Payload bytes of an
// RW packet follow it directly, possibly in further descriptors.

export const HEADER_SIZE = 44;

/** The well-known CID of the host (vsock(7)); the guest connects to it. */
export const HOST_CID = 2;
/** Ports are u32 on the wire (struct virtio_vsock_hdr, spec 5.10.6). */
export const MAX_VSOCK_PORT = 0xffff_ffff;

/** Only stream sockets are offered (VIRTIO_VSOCK_F_SEQPACKET is not). */
export const VSOCK_TYPE_STREAM = 1;

/** Packet operations (spec 5.10.6.1, enum virtio_vsock_op). */
export const Op = {
  Invalid: 0,
  Request: 1,
  Response: 2,
  Rst: 3,
  Shutdown: 4,
  Rw: 5,
  CreditUpdate: 6,
  CreditRequest: 7,
} as const;

/** SHUTDOWN flags: what the sender will no longer do (enum virtio_vsock_shutdown). */
export const SHUTDOWN_RCV = 1;
export const SHUTDOWN_SEND = 2;
export const SHUTDOWN_BOTH = SHUTDOWN_RCV | SHUTDOWN_SEND;

/** Event ids on the event queue (struct virtio_vsock_event, a single le32). */
export const EVENT_TRANSPORT_RESET = 0;
export const EVENT_SIZE = 4;

export interface PacketHeader {
  /**
   * CIDs are le64 on the wire; the upper 32 bits are reserved (spec 5.10.4).
   * Decoded as a number: exact below 2^53, and a CID that large is wrong anyway.
   */
  srcCid: number;
  dstCid: number;
  srcPort: number;
  dstPort: number;
  /** Payload length in bytes (RW only). */
  len: number;
  type: number;
  op: number;
  flags: number;
  /** The sender's receive buffer size for this connection (credit, spec 5.10.6.3). */
  bufAlloc: number;
  /** Bytes the sender has consumed from its receive buffer so far (wraps at 2^32). */
  fwdCnt: number;
}

const TWO_POW_32 = 0x1_0000_0000;

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Reads a header from the first 44 bytes of `bytes`. */
export function decodeHeader(bytes: Uint8Array): PacketHeader {
  if (bytes.byteLength < HEADER_SIZE) {
    throw new RangeError(`a vsock header needs ${HEADER_SIZE} bytes, got ${bytes.byteLength}`);
  }
  const v = viewOf(bytes);
  return {
    srcCid: v.getUint32(0, true) + v.getUint32(4, true) * TWO_POW_32,
    dstCid: v.getUint32(8, true) + v.getUint32(12, true) * TWO_POW_32,
    srcPort: v.getUint32(16, true),
    dstPort: v.getUint32(20, true),
    len: v.getUint32(24, true),
    type: v.getUint16(28, true),
    op: v.getUint16(30, true),
    flags: v.getUint32(32, true),
    bufAlloc: v.getUint32(36, true),
    fwdCnt: v.getUint32(40, true),
  };
}

/** Writes `header` into the first 44 bytes of `target`. CIDs must be below 2^53. */
export function encodeHeader(header: PacketHeader, target: Uint8Array): void {
  if (target.byteLength < HEADER_SIZE) {
    throw new RangeError(`a vsock header needs ${HEADER_SIZE} bytes, got ${target.byteLength}`);
  }
  const v = viewOf(target);
  v.setUint32(0, header.srcCid % TWO_POW_32, true);
  v.setUint32(4, Math.floor(header.srcCid / TWO_POW_32), true);
  v.setUint32(8, header.dstCid % TWO_POW_32, true);
  v.setUint32(12, Math.floor(header.dstCid / TWO_POW_32), true);
  v.setUint32(16, header.srcPort, true);
  v.setUint32(20, header.dstPort, true);
  v.setUint32(24, header.len, true);
  v.setUint16(28, header.type, true);
  v.setUint16(30, header.op, true);
  v.setUint32(32, header.flags, true);
  v.setUint32(36, header.bufAlloc, true);
  v.setUint32(40, header.fwdCnt, true);
}

/** The spec's name for an op without its prefix (CREDIT_UPDATE for VIRTIO_VSOCK_OP_CREDIT_UPDATE), for messages and logs. */
export function opName(op: number): string {
  const entry = Object.entries(Op).find(([, value]) => value === op);
  return entry ? entry[0].replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase() : `op ${op}`;
}
