// virtio-console with a single port (virtio 1.x spec 5.3): queue 0 carries
// input to the guest (receiveq), queue 1 the guest's output (transmitq).
// Linux drives it as /dev/hvc0. No feature bits: no MULTIPORT (one port is
// all we need), no SIZE (the guest keeps its default 80x24), no EMERG_WRITE.
//
// Output goes to a CharBackend. When the backend is full (write() returns
// false) we stop taking buffers off the transmitq until it drains: the
// guest's writes then wait in the guest, and no byte is lost.
//
// Input that arrives while the guest has offered no receive buffer is kept,
// up to `maxPendingInput` bytes (64 KiB by default: a big paste, or typing
// ahead of a booting guest). Past that, newer input is dropped, as a full
// UART FIFO drops it, and counted in `droppedInputBytes`.
import type { CharBackend } from '../char-backend.js';
import { VirtioDeviceType, type DeviceContext, type VirtioDevice } from './device.js';
import { RING_FEATURES, VirtqueueError } from './queue.js';

export const CONSOLE_RECEIVE_QUEUE = 0;
export const CONSOLE_TRANSMIT_QUEUE = 1;
export const CONSOLE_QUEUE_SIZE = 256;
export const DEFAULT_MAX_PENDING_INPUT = 64 * 1024;

export interface VirtioConsoleOptions {
  name?: string;
  maxPendingInput?: number;
}

export class VirtioConsole implements VirtioDevice {
  readonly type = VirtioDeviceType.Console;
  readonly name: string;
  readonly queueMaxSizes = [CONSOLE_QUEUE_SIZE, CONSOLE_QUEUE_SIZE];
  readonly features = RING_FEATURES;
  private readonly maxPendingInput: number;
  private context: DeviceContext | undefined;
  private failed = false;
  /** The backend said it is full; wait for onDrain. */
  private outputBlocked = false;
  private readonly pendingInput: Uint8Array[] = [];
  private pendingInputBytes = 0;
  private dropped = 0;

  constructor(private readonly backend: CharBackend, options: VirtioConsoleOptions = {}) {
    this.name = options.name ?? 'virtio-console';
    this.maxPendingInput = options.maxPendingInput ?? DEFAULT_MAX_PENDING_INPUT;
    backend.onInput((data) => this.receiveInput(data));
    backend.onDrain(() => {
      this.outputBlocked = false;
      this.transmit();
    });
  }

  /** Input bytes lost because the guest took none while the buffer was full. */
  get droppedInputBytes(): number {
    return this.dropped;
  }

  readConfig(_offset: number, data: Uint8Array): void {
    // struct virtio_console_config (cols, rows, max_nr_ports, emerg_wr): every
    // field needs a feature we do not offer, so it reads as zeros.
    data.fill(0);
  }

  writeConfig(): void {
    // emerg_wr needs VIRTIO_CONSOLE_F_EMERG_WRITE, which we do not offer.
  }

  activate(context: DeviceContext): void {
    this.context = context;
    this.failed = false;
    this.deliverInput();
    this.transmit();
  }

  queueNotify(queueIndex: number): void {
    if (queueIndex === CONSOLE_RECEIVE_QUEUE) this.deliverInput();
    else if (queueIndex === CONSOLE_TRANSMIT_QUEUE) this.transmit();
  }

  /** Pending input is host data, not guest state: it survives a reset. */
  reset(): void {
    this.context = undefined;
    this.failed = false;
  }

  /** The backend belongs to whoever created it (it may be shared); nothing else to release. */
  async close(): Promise<void> {
    this.context = undefined;
  }

  private receiveInput(data: Uint8Array): void {
    const room = this.maxPendingInput - this.pendingInputBytes;
    const kept = data.byteLength <= room ? data : data.subarray(0, Math.max(0, room));
    this.dropped += data.byteLength - kept.byteLength;
    if (kept.byteLength > 0) {
      this.pendingInput.push(kept.slice()); // the backend may reuse its buffer
      this.pendingInputBytes += kept.byteLength;
    }
    this.deliverInput();
  }

  /** Fills the guest's receive buffers with pending input. */
  private deliverInput(): void {
    const context = this.context;
    const queue = context?.queues[CONSOLE_RECEIVE_QUEUE];
    if (!context || !queue || this.failed) return;
    try {
      while (this.pendingInputBytes > 0) {
        const chain = queue.pop();
        if (!chain) break;
        let written = 0;
        while (this.pendingInput.length > 0 && written < chain.writableLength) {
          const chunk = this.pendingInput[0]!;
          const n = chain.write(written, chunk);
          written += n;
          this.pendingInputBytes -= n;
          if (n === chunk.byteLength) this.pendingInput.shift();
          else this.pendingInput[0] = chunk.subarray(n);
        }
        queue.pushUsed(chain, written);
      }
    } catch (error) {
      this.fail(context, error);
    }
    if (queue.needsInterrupt()) context.signalUsed(CONSOLE_RECEIVE_QUEUE);
  }

  /** Passes the guest's output to the backend until the queue is empty or the backend is full. */
  private transmit(): void {
    const context = this.context;
    const queue = context?.queues[CONSOLE_TRANSMIT_QUEUE];
    if (!context || !queue || this.failed) return;
    try {
      while (!this.outputBlocked) {
        const chain = queue.pop();
        if (!chain) break;
        const data = chain.readAll();
        // The backend keeps every byte it is given, so the buffer is done either way.
        queue.pushUsed(chain, 0);
        if (data.byteLength > 0 && !this.backend.write(data)) this.outputBlocked = true;
      }
    } catch (error) {
      this.fail(context, error);
    }
    if (queue.needsInterrupt()) context.signalUsed(CONSOLE_TRANSMIT_QUEUE);
  }

  /**
   * A malformed chain (or a bug of ours): stop serving queues until the
   * driver resets us. Never rethrown: this also runs from backend callbacks.
   */
  private fail(context: DeviceContext, error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    this.failed = true;
    context.fail(error instanceof VirtqueueError ? message : `internal error: ${message}`);
  }
}
