// Test doubles for a UART's surroundings: a backend that records output and
// can pretend to be full, and an interrupt line that counts.
import type { CharBackend } from '../../../src/devices/char-backend.js';
import type { InterruptLine } from '../../../src/devices/interrupt-line.js';

export class RecordingBackend implements CharBackend {
  readonly written: number[] = [];
  /** write() returns false while set. */
  full = false;
  private drainListener: (() => void) | undefined;
  private inputListener: ((data: Uint8Array) => void) | undefined;

  write(data: Uint8Array): boolean {
    this.written.push(...data);
    return !this.full;
  }
  onDrain(callback: () => void): void {
    this.drainListener = callback;
  }
  onInput(callback: (data: Uint8Array) => void): void {
    this.inputListener = callback;
  }
  async close(): Promise<void> {}

  /** The host side caught up. */
  drain(): void {
    this.full = false;
    this.drainListener?.();
  }
  /** The user typed `text`. */
  type(text: string): void {
    this.inputListener?.(new TextEncoder().encode(text));
  }
  text(): string {
    return Buffer.from(this.written).toString('latin1');
  }
}

export class CountingInterrupt implements InterruptLine {
  count = 0;
  trigger(): void {
    this.count++;
  }
}
