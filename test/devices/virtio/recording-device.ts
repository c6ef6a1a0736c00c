// A minimal virtio device for the transport and queue tests: on each notify
// it pops every available chain, records what it saw, fills the writable
// part with a byte pattern and returns the chain.
import type { DeviceContext, VirtioDevice } from '../../../src/devices/virtio/device.js';
import { RING_FEATURES, VirtqueueError, type DescriptorChain } from '../../../src/devices/virtio/queue.js';

export interface SeenChain {
  queue: number;
  head: number;
  readable: { address: number; length: number }[];
  writable: { address: number; length: number }[];
  data: Uint8Array;
}

export class RecordingDevice implements VirtioDevice {
  readonly type = 0x7f; // an unassigned device ID
  readonly name = 'recording device';
  readonly features: bigint;
  readonly queueMaxSizes: readonly number[];
  readonly config = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
  readonly seen: SeenChain[] = [];
  readonly errors: string[] = [];
  activations: DeviceContext[] = [];
  resets = 0;
  notifies: number[] = [];
  /** What to write into each writable part; default fills it with 0x5a. */
  respond: (chain: DescriptorChain) => Uint8Array = (chain) => new Uint8Array(chain.writableLength).fill(0x5a);
  /** When true, queueNotify only records the notification (the test pops by hand). */
  passive = false;
  /** When set, queueNotify throws this (to test the transport's guard). */
  throwOnNotify: Error | undefined;

  constructor(options: { queues?: readonly number[]; features?: bigint } = {}) {
    this.queueMaxSizes = options.queues ?? [16, 16];
    this.features = options.features ?? RING_FEATURES;
  }

  get context(): DeviceContext | undefined {
    return this.activations.at(-1);
  }

  readConfig(offset: number, data: Uint8Array): void {
    data.fill(0);
    data.set(this.config.subarray(offset, offset + data.byteLength));
  }

  writeConfig(offset: number, data: Uint8Array): void {
    this.config.set(data.subarray(0, Math.max(0, this.config.byteLength - offset)), offset);
  }

  activate(context: DeviceContext): void {
    this.activations.push(context);
  }

  reset(): void {
    this.resets++;
  }

  queueNotify(queueIndex: number): void {
    this.notifies.push(queueIndex);
    if (this.throwOnNotify) throw this.throwOnNotify;
    if (this.passive) return;
    const context = this.context!;
    const queue = context.queues[queueIndex]!;
    try {
      for (let chain = queue.pop(); chain; chain = queue.pop()) {
        this.seen.push({
          queue: queueIndex,
          head: chain.head,
          readable: chain.readable.map(({ address, length }) => ({ address, length })),
          writable: chain.writable.map(({ address, length }) => ({ address, length })),
          data: chain.readAll(),
        });
        const response = this.respond(chain);
        queue.pushUsed(chain, chain.write(0, response));
      }
    } catch (error) {
      if (!(error instanceof VirtqueueError)) throw error;
      this.errors.push(error.message);
      context.fail(error.message);
    }
    if (queue.needsInterrupt()) context.signalUsed(queueIndex);
  }
}
