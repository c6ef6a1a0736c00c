// The virtio-blk request format (virtio 1.x spec 5.2.6): a chain made of a
// 16-byte header the device reads, then the data (read by the device for a
// write, written by it for a read), then one status byte the device writes:
// always the last writable byte of the chain.
//
//   struct virtio_blk_req { le32 type; le32 reserved; le64 sector; u8 data[]; u8 status; }
import { MAX_DISK_ID_BYTES } from '../../../config/types.js';
import type { DescriptorChain } from '../queue.js';

export const SECTOR_SIZE = 512;
export const REQUEST_HEADER_SIZE = 16;
/** GET_ID answers with at most this many bytes, NUL-padded (VIRTIO_BLK_ID_BYTES, defined once in the config layer). */
export const ID_BYTES = MAX_DISK_ID_BYTES;

/** Request types (VIRTIO_BLK_T_*). */
export const RequestType = {
  In: 0,
  Out: 1,
  Flush: 4,
  GetId: 8,
} as const;

/** Status byte values (VIRTIO_BLK_S_*). */
export const RequestStatus = {
  Ok: 0,
  IoError: 1,
  Unsupported: 2,
} as const;

export interface RequestHeader {
  type: number;
  /** In 512-byte units, whatever the device's blk_size. */
  sector: bigint;
}

/** The header, or undefined when the readable part is too short to hold one. */
export function readRequestHeader(chain: DescriptorChain): RequestHeader | undefined {
  const bytes = new Uint8Array(REQUEST_HEADER_SIZE);
  if (chain.read(0, bytes) < REQUEST_HEADER_SIZE) return undefined;
  const view = new DataView(bytes.buffer);
  return { type: view.getUint32(0, true), sector: view.getBigUint64(8, true) };
}
