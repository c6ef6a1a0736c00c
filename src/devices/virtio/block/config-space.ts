// The virtio-blk configuration space (virtio 1.x spec 5.2.4), as the guest
// reads it at offset 0x100 of the device's MMIO region. Only the fields of
// the features we offer matter; the rest read as zero.
//
//   0  le64 capacity     (512-byte sectors)
//   8  le32 size_max     (VIRTIO_BLK_F_SIZE_MAX: largest data segment)
//  12  le32 seg_max      (VIRTIO_BLK_F_SEG_MAX: data segments per request)
//  16  geometry          (not offered)
//  20  le32 blk_size     (VIRTIO_BLK_F_BLK_SIZE: logical block size)
//  24  topology, writeback, num_queues, discard and write-zeroes limits (not offered)
const CONFIG_SIZE = 60;

export interface BlockConfig {
  capacitySectors: bigint;
  sizeMax: number;
  segMax: number;
  blockSize: number;
}

export function encodeBlockConfig(config: BlockConfig): Uint8Array {
  const bytes = new Uint8Array(CONFIG_SIZE);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, config.capacitySectors, true);
  view.setUint32(8, config.sizeMax, true);
  view.setUint32(12, config.segMax, true);
  view.setUint32(20, config.blockSize, true);
  return bytes;
}
