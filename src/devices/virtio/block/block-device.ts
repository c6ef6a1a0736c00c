// virtio-blk (virtio 1.x spec 5.2) over a raw image file: one request queue,
// requests served concurrently and completed in the used ring in the order
// they finish.
//
// Reads go through a host buffer, copied into the guest when the disk read
// completes: a read still in flight when the driver resets the device then
// lands nowhere, instead of in guest memory the driver may have reused.
// Writes go straight from guest memory to the file (writev, no copy).
// To bound host memory, at most MAX_IN_FLIGHT_BYTES of data are in flight;
// past that the device stops popping requests until some complete.
import { trace } from '../../../trace.js';
import { basename } from 'node:path';
import { diskIdProblem } from '../../../config/rules.js';
import { VirtioDeviceType, type DeviceContext, type VirtioDevice } from '../device.js';
import { RING_FEATURES, VirtqueueError, type DescriptorChain, type Virtqueue } from '../queue.js';
import { encodeBlockConfig } from './config-space.js';
import { BlockDeviceError, DiskImage } from './disk-image.js';
import {
  ID_BYTES, REQUEST_HEADER_SIZE, RequestStatus, RequestType, SECTOR_SIZE, readRequestHeader, type RequestHeader,
} from './request.js';

/** Feature bits (VIRTIO_BLK_F_*). */
export const BlockFeature = {
  SizeMax: 1n << 1n,
  SegMax: 1n << 2n,
  ReadOnly: 1n << 5n,
  BlockSize: 1n << 6n,
  Flush: 1n << 9n,
} as const;

export const BLOCK_QUEUE_SIZE = 256;
/** Data segments per request: a request (header + data + status) still fits a queue without indirect descriptors. */
export const BLOCK_SEG_MAX = BLOCK_QUEUE_SIZE - 2;
/** Largest data segment; with SEG_MAX it caps a request at about 16 MiB. */
export const BLOCK_SIZE_MAX = 64 * 1024;
export const MAX_REQUEST_BYTES = BLOCK_SEG_MAX * BLOCK_SIZE_MAX;
export const MAX_IN_FLIGHT_BYTES = 64 * 1024 * 1024;

export interface BlockDeviceOptions {
  /** A raw image file. */
  path: string;
  /** The guest sees a read-only disk; the file is opened read-only. */
  readonly?: boolean;
  /** What GET_ID returns (/sys/block/vdX/serial): 1 to 20 printable ASCII characters (src/config/rules.ts). */
  id?: string;
}

/** Opens the image and builds the device; throws BlockDeviceError with a one-line reason. */
export async function openBlockDevice(options: BlockDeviceOptions): Promise<VirtioBlock> {
  const problem = options.id === undefined ? undefined : diskIdProblem(options.id);
  if (problem !== undefined) throw new BlockDeviceError(`disk ${problem}`);
  const image = await DiskImage.open(options.path, options.readonly ?? false);
  return new VirtioBlock(image, options.id);
}

export class VirtioBlock implements VirtioDevice {
  readonly type = VirtioDeviceType.Block;
  readonly name: string;
  readonly queueMaxSizes = [BLOCK_QUEUE_SIZE];
  readonly features: bigint;
  /** Sectors the guest can address: the image size rounded down to 512 bytes. */
  readonly capacitySectors: bigint;
  private readonly config: Uint8Array;
  private readonly idBytes = new Uint8Array(ID_BYTES);
  private context: DeviceContext | undefined;
  /** Bumped on reset: completions of older requests are dropped. */
  private generation = 0;
  private failed = false;
  private inFlightBytes = 0;
  private interruptPending = false;

  constructor(private readonly image: DiskImage, id = '') {
    this.name = `virtio-blk ${id || basename(image.path)}`;
    this.idBytes.set(Buffer.from(id, 'latin1').subarray(0, ID_BYTES));
    this.capacitySectors = BigInt(Math.floor(image.sizeBytes / SECTOR_SIZE));
    this.features = RING_FEATURES | BlockFeature.SizeMax | BlockFeature.SegMax | BlockFeature.BlockSize
      | BlockFeature.Flush | (image.readonly ? BlockFeature.ReadOnly : 0n);
    this.config = encodeBlockConfig({
      capacitySectors: this.capacitySectors, sizeMax: BLOCK_SIZE_MAX, segMax: BLOCK_SEG_MAX, blockSize: SECTOR_SIZE,
    });
  }

  get readonly(): boolean {
    return this.image.readonly;
  }

  readConfig(offset: number, data: Uint8Array): void {
    data.fill(0);
    if (offset < this.config.byteLength) data.set(this.config.subarray(offset, offset + data.byteLength));
  }

  writeConfig(): void {
    // Only `writeback` is writable, and only with VIRTIO_BLK_F_CONFIG_WCE, which we do not offer.
  }

  activate(context: DeviceContext): void {
    this.context = context;
    this.failed = false;
    this.processQueue();
  }

  queueNotify(): void {
    this.processQueue();
  }

  reset(): void {
    this.generation++;
    this.context = undefined;
    this.failed = false;
  }

  /** Closes the image once requests in flight have finished (their completions are dropped). */
  async close(): Promise<void> {
    this.reset();
    await this.image.close();
  }

  private processQueue(): void {
    const context = this.context;
    const queue = context?.queues[0];
    if (!context || !queue || this.failed) return;
    try {
      while (this.inFlightBytes < MAX_IN_FLIGHT_BYTES) {
        const chain = queue.pop();
        if (!chain) break;
        this.serve(context, queue, chain);
      }
    } catch (error) {
      this.fail(context, error);
    }
    this.signalSoon(context, queue);
  }

  /** Starts one request; simple ones complete at once, disk I/O completes later. */
  private serve(context: DeviceContext, queue: Virtqueue, chain: DescriptorChain): void {
    if (chain.writableLength === 0) {
      throw new VirtqueueError(`virtio-blk request ${chain.head} has no room for a status byte`);
    }
    const generation = this.generation;
    const header = readRequestHeader(chain);
    const dataIn = chain.writableLength - 1; // room for data the device writes
    const dataOut = chain.readableLength - REQUEST_HEADER_SIZE; // data the device reads
    const done = (status: number, dataBytes = 0) => {
      if (trace.blk) trace.line('blk', describeRequest(header, dataIn, dataOut, status));
      this.complete(context, queue, chain, generation, status, dataBytes);
    };
    if (!header) return done(RequestStatus.IoError);

    switch (header.type) {
      case RequestType.In: {
        const position = this.checkRange(header.sector, dataIn);
        if (position === undefined) return done(RequestStatus.IoError);
        // Straight into the guest's buffers. A read still in flight when
        // the driver resets the device lands there all the same (as under
        // QEMU); Linux resets only once its requests are done.
        const read = this.image.readInto(position, chain.writableViews(0, dataIn));
        this.track(context, dataIn, read, () => done(RequestStatus.Ok, dataIn), done);
        return;
      }
      case RequestType.Out: {
        const position = this.checkRange(header.sector, dataOut);
        if (position === undefined || this.readonly) return done(RequestStatus.IoError);
        const write = this.image.writeAt(position, chain.readableViews(REQUEST_HEADER_SIZE));
        this.track(context, dataOut, write, () => done(RequestStatus.Ok), done);
        return;
      }
      case RequestType.Flush:
        if (this.readonly) return done(RequestStatus.Ok);
        this.track(context, 0, this.image.flush(), () => done(RequestStatus.Ok), done);
        return;
      case RequestType.GetId: {
        const length = Math.min(ID_BYTES, dataIn);
        chain.write(0, this.idBytes.subarray(0, length));
        return done(RequestStatus.Ok, length);
      }
      default:
        return done(RequestStatus.Unsupported);
    }
  }

  /** The byte offset of a transfer, or undefined if it is not whole sectors inside the disk (spec 5.2.6.2). */
  private checkRange(sector: bigint, length: number): number | undefined {
    if (length < 0 || length % SECTOR_SIZE !== 0 || length > MAX_REQUEST_BYTES) return undefined;
    const end = sector + BigInt(length / SECTOR_SIZE);
    if (end > this.capacitySectors) return undefined;
    return Number(sector) * SECTOR_SIZE;
  }

  /** Waits for disk I/O, accounting its bytes against the in-flight budget. */
  private track<T>(context: DeviceContext, bytes: number, io: Promise<T>,
    onSuccess: (value: T) => void, done: (status: number) => void): void {
    this.inFlightBytes += bytes;
    io.then(onSuccess, () => done(RequestStatus.IoError)) // a host I/O error is the guest's EIO
      .catch((error: unknown) => this.fail(context, error))
      .finally(() => {
        this.inFlightBytes -= bytes;
        this.processQueue();
      });
  }

  /** Writes the status byte and returns the chain, unless the device was reset since the request began. */
  private complete(context: DeviceContext, queue: Virtqueue, chain: DescriptorChain,
    generation: number, status: number, dataBytes: number): void {
    if (generation !== this.generation || this.failed) return;
    try {
      chain.write(chain.writableLength - 1, Uint8Array.of(status));
      queue.pushUsed(chain, dataBytes + 1);
    } catch (error) {
      this.fail(context, error);
      return;
    }
    this.signalSoon(context, queue);
  }

  /** One interrupt check for all completions of this turn of the event loop. */
  private signalSoon(context: DeviceContext, queue: Virtqueue): void {
    if (this.interruptPending) return;
    this.interruptPending = true;
    queueMicrotask(() => {
      this.interruptPending = false;
      if (context === this.context && queue.needsInterrupt()) context.signalUsed(0);
    });
  }

  private fail(context: DeviceContext, error: unknown): void {
    if (context !== this.context) return; // a request from before a reset
    const message = error instanceof Error ? error.message : String(error);
    this.failed = true;
    context.fail(error instanceof VirtqueueError ? message : `internal error: ${message}`);
  }
}

const REQUEST_TYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [RequestType.In, 'IN'], [RequestType.Out, 'OUT'], [RequestType.Flush, 'FLUSH'], [RequestType.GetId, 'GET_ID'],
]);
const STATUS_NAMES: ReadonlyMap<number, string> = new Map([
  [RequestStatus.Ok, 'OK'], [RequestStatus.IoError, 'IOERR'], [RequestStatus.Unsupported, 'UNSUPP'],
]);

/** `IN sector 2048, 4096 bytes: OK`, as `--trace blk` shows a finished request. */
function describeRequest(header: RequestHeader | undefined, dataIn: number, dataOut: number, status: number): string {
  const outcome = STATUS_NAMES.get(status) ?? `status ${status}`;
  if (header === undefined) return `malformed request: ${outcome}`;
  const type = REQUEST_TYPE_NAMES.get(header.type) ?? `type ${header.type}`;
  const bytes = header.type === RequestType.Out ? dataOut : header.type === RequestType.In ? dataIn : 0;
  return `${type} sector ${header.sector}, ${bytes} bytes: ${outcome}`;
}
