// The contract between the virtio-mmio transport and a virtio device
// (block, console, vsock). The transport owns the registers, feature
// negotiation, the status state machine and queue setup; the device owns
// what travels in its queues. Virtio 1.x spec, section 2 and 4.2.
import type { GuestMemory } from '../../memory/guest-memory.js';
import type { Virtqueue } from './queue.js';

/** Device IDs (virtio spec 5). */
export const VirtioDeviceType = {
  Block: 2,
  Console: 3,
  Vsock: 19,
} as const;

/** Feature bits every device may offer; the transport adds VERSION_1 itself. */
export const VIRTIO_F_RING_INDIRECT_DESC = 1n << 28n;
export const VIRTIO_F_RING_EVENT_IDX = 1n << 29n;
export const VIRTIO_F_VERSION_1 = 1n << 32n;

/** What a device gets when the driver sets DRIVER_OK. */
export interface DeviceContext {
  readonly memory: GuestMemory;
  /** Index = queue index; only queues the driver enabled are present (others undefined). */
  readonly queues: readonly (Virtqueue | undefined)[];
  /** The features both sides agreed on. */
  readonly features: bigint;
  /** Tells the driver the device put buffers in a used ring (the transport raises the interrupt). */
  signalUsed(queueIndex: number): void;
  /** Tells the driver the config space changed. */
  signalConfigChange(): void;
  /**
   * The driver broke the device's rules (e.g. a malformed descriptor chain
   * the device cannot skip): the transport sets DEVICE_NEEDS_RESET and
   * tells the driver; the device stops processing until reset.
   */
  fail(reason: string): void;
}

export interface VirtioDevice {
  readonly type: number;
  /** A short name for messages, e.g. "virtio-blk vda". */
  readonly name: string;
  /** Maximum size of each queue; its length is the number of queues. */
  readonly queueMaxSizes: readonly number[];
  /** Device-specific feature bits offered to the driver (VERSION_1 is added by the transport). */
  readonly features: bigint;
  readConfig(offset: number, data: Uint8Array): void;
  writeConfig(offset: number, data: Uint8Array): void;
  /** The driver set DRIVER_OK: start serving the queues. */
  activate(context: DeviceContext): void;
  /** The driver notified queue `queueIndex` (QueueNotify write or its ioeventfd). */
  queueNotify(queueIndex: number): void;
  /** The driver wrote 0 to Status: drop all in-flight work and forget the queues. */
  reset(): void;
  /** The VM is stopping: release host resources (files, sockets, timers). */
  close?(): Promise<void>;
}
