// Host-side ports for connections the host initiates. The guest sees them as
// the source port of our REQUEST (and the host program gets it back in
// "OK <port>\n"). Like Firecracker we hand them out from 2^30 upwards, far
// from the low ports guest-initiated connections usually target, and never
// give out a port that a live connection still uses.

export const FIRST_HOST_PORT = 0x4000_0000; // 2^30
const LAST_HOST_PORT = 0xffff_ffff;

export class PortExhaustedError extends Error {
  constructor() {
    super('no free host vsock port: every port from 2^30 to 2^32-1 is in use');
    this.name = 'PortExhaustedError';
  }
}

export class PortAllocator {
  private readonly inUse = new Set<number>();
  private next = FIRST_HOST_PORT;

  /** A port no live connection holds; wraps back to 2^30 after 2^32-1. */
  allocate(): number {
    const span = LAST_HOST_PORT - FIRST_HOST_PORT + 1;
    if (this.inUse.size >= span) throw new PortExhaustedError();
    while (this.inUse.has(this.next)) this.advance();
    const port = this.next;
    this.inUse.add(port);
    this.advance();
    return port;
  }

  release(port: number): void {
    this.inUse.delete(port);
  }

  releaseAll(): void {
    this.inUse.clear();
  }

  get liveCount(): number {
    return this.inUse.size;
  }

  private advance(): void {
    this.next = this.next === LAST_HOST_PORT ? FIRST_HOST_PORT : this.next + 1;
  }
}
