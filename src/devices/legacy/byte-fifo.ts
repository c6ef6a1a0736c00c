// A bounded first-in first-out queue of bytes (a ring buffer), for the
// UART's receive side. Fixed capacity: the caller decides what "full" means.

export class ByteFifo {
  private readonly buffer: Uint8Array;
  private head = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    this.buffer = new Uint8Array(capacity);
  }

  get length(): number {
    return this.count;
  }

  get isFull(): boolean {
    return this.count === this.capacity;
  }

  /** Appends `byte`; returns false (and keeps the queue as is) when full. */
  push(byte: number): boolean {
    if (this.count === this.capacity) return false;
    this.buffer[(this.head + this.count) % this.capacity] = byte;
    this.count++;
    return true;
  }

  /** Removes and returns the oldest byte, or undefined when empty. */
  shift(): number | undefined {
    if (this.count === 0) return undefined;
    const byte = this.buffer[this.head]!;
    this.head = (this.head + 1) % this.capacity;
    this.count--;
    return byte;
  }

  clear(): void {
    this.head = 0;
    this.count = 0;
  }
}
