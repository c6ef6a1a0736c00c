// Bytes read from a host socket that the guest has not received yet. Chunks
// are kept as Node handed them over (no copy on the way in); they are copied
// exactly once, into the guest's rx buffers.

export class ByteQueue {
  private readonly chunks: Buffer[] = [];
  /** Bytes of chunks[0] already taken. */
  private headOffset = 0;
  private total = 0;

  get length(): number {
    return this.total;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** Removes the first `count` bytes (at most `length`), handing them to `sink` in order, in one or more pieces. */
  take(count: number, sink: (piece: Buffer) => void): number {
    const wanted = Math.min(count, this.total);
    let done = 0;
    while (done < wanted) {
      const head = this.chunks[0]!;
      const n = Math.min(head.length - this.headOffset, wanted - done);
      sink(head.subarray(this.headOffset, this.headOffset + n));
      done += n;
      this.headOffset += n;
      if (this.headOffset === head.length) {
        this.chunks.shift();
        this.headOffset = 0;
      }
    }
    this.total -= done;
    return done;
  }

  clear(): void {
    this.chunks.length = 0;
    this.headOffset = 0;
    this.total = 0;
  }
}
