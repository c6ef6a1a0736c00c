// A bus device for the KVM tests: remembers every access and answers reads
// with preset bytes, so a test can check exactly what the guest did.

import { BusDevice } from '../../src/bus/bus.js';

export interface Access {
  offset: number;
  bytes: number[];
}

export class RecordingDevice implements BusDevice {
  readonly writes: Access[] = [];
  readonly reads: Access[] = [];
  /** offset -> bytes returned by a read at that offset (missing bytes read as 0). */
  readonly answers = new Map<number, number[]>();
  private waiters: { count: number; resolve: () => void }[] = [];

  read(offset: number, data: Uint8Array): void {
    const answer = this.answers.get(offset) ?? [];
    for (let i = 0; i < data.length; i++) data[i] = answer[i] ?? 0;
    this.reads.push({ offset, bytes: [...data] });
    this.onRead?.(offset);
  }

  write(offset: number, data: Uint8Array): void {
    this.writes.push({ offset, bytes: [...data] });
    this.waiters = this.waiters.filter((w) => {
      if (this.writes.length < w.count) return true;
      w.resolve();
      return false;
    });
  }

  /** Optional hook run after each read. */
  onRead?: (offset: number) => void;

  /** Resolves once `count` writes have arrived. */
  waitForWrites(count: number): Promise<void> {
    if (this.writes.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }
}
