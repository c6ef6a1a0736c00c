// A CharBackend for tests: records output, reports "full" after `capacity`
// writes until the test calls drain(), and lets the test type input.
import type { CharBackend } from '../../../src/devices/char-backend.js';

export class TestCharBackend implements CharBackend {
  readonly writes: Uint8Array[] = [];
  private queued = 0;
  private drainCallback: () => void = () => {};
  private inputCallback: (data: Uint8Array) => void = () => {};

  /** `capacity`: how many writes fit before write() returns false (Infinity: never full). */
  constructor(private readonly capacity = Infinity) {}

  get output(): string {
    return Buffer.concat(this.writes).toString('latin1');
  }

  write(data: Uint8Array): boolean {
    this.writes.push(data.slice());
    this.queued++;
    return this.queued < this.capacity;
  }

  /** The host side caught up: empty the queue and tell the device. */
  drain(): void {
    this.queued = 0;
    this.drainCallback();
  }

  type(text: string): void {
    this.inputCallback(Buffer.from(text, 'latin1'));
  }

  onDrain(callback: () => void): void {
    this.drainCallback = callback;
  }

  onInput(callback: (data: Uint8Array) => void): void {
    this.inputCallback = callback;
  }

  async close(): Promise<void> {}
}
