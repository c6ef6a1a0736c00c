// virtio-blk: what the rest of tsvmm needs.
export {
  BLOCK_QUEUE_SIZE, BlockFeature, VirtioBlock, openBlockDevice, type BlockDeviceOptions,
} from './block-device.js';
export { BlockDeviceError } from './disk-image.js';
export { RequestStatus, RequestType, SECTOR_SIZE } from './request.js';
