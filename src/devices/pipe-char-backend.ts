// The `pipe` host end of a character device, for library callers: a Duplex
// stream (vm.serial, vm.console) whose readable side is the guest's output
// and whose writable side is the guest's input. Nothing is dropped: when the
// caller does not read, the stream's buffer fills, write() returns false and
// the device holds the guest back until the caller reads again (so a caller
// that never reads should pick 'null' instead).
import { Duplex } from 'node:stream';
import type { CharBackend } from './char-backend.js';

/** Guest output buffered in the stream before the guest is held back. */
const HIGH_WATER_MARK = 64 * 1024;

export class PipeBackend implements CharBackend {
  /** The caller's end: read the guest's output, write its input. Ends when the VM stops. */
  readonly callerEnd: Duplex;
  private readonly drainListeners: (() => void)[] = [];
  private readonly inputListeners: ((data: Uint8Array) => void)[] = [];
  /** Input written before the device listens (it listens from the start; kept for safety). */
  private pendingInput: Uint8Array[] = [];
  private waitingForRead = false;
  private closed = false;

  constructor() {
    this.callerEnd = new Duplex({
      readableHighWaterMark: HIGH_WATER_MARK,
      read: () => this.resumeGuest(),
      write: (chunk: Buffer, _encoding, done) => {
        this.deliverInput(chunk);
        done();
      },
    });
    // A caller's stream error (e.g. destroy(error)) must not crash the process through tsvmm's stream.
    this.callerEnd.on('error', () => {});
  }

  write(data: Uint8Array): boolean {
    if (this.closed || this.callerEnd.destroyed) return true; // Nobody will read it; never hold the guest back for it.
    const roomLeft = this.callerEnd.push(Buffer.from(data)); // Copied: the device may reuse its buffer.
    if (!roomLeft) this.waitingForRead = true;
    return roomLeft;
  }

  onDrain(callback: () => void): void {
    this.drainListeners.push(callback);
  }

  onInput(callback: (data: Uint8Array) => void): void {
    this.inputListeners.push(callback);
    const pending = this.pendingInput;
    this.pendingInput = [];
    for (const data of pending) callback(data);
  }

  /** Ends the readable side (the caller sees 'end' after the last byte) and ignores further input. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.callerEnd.push(null);
    this.callerEnd.end();
    this.resumeGuest();
  }

  private resumeGuest(): void {
    if (!this.waitingForRead) return;
    this.waitingForRead = false;
    for (const listener of this.drainListeners) listener();
  }

  private deliverInput(chunk: Buffer): void {
    if (this.closed) return;
    if (this.inputListeners.length === 0) this.pendingInput.push(chunk);
    for (const listener of this.inputListeners) listener(chunk);
  }
}
