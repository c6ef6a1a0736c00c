// Calls back on the main thread when any of many fds becomes readable
// (ioeventfds, mostly), without blocking the main thread and without a
// thread per fd.
//
// How: each fd gets a libuv poll handle (koffi.node.poll, uv_poll_t), which
// adds it to the epoll set libuv's own event loop already waits on. So all
// watched fds share ONE epoll set, no thread is blocked on our behalf, and
// there is nothing to wake at shutdown: close() just removes the handles.
//
// Why not a separate epoll fd waited on by a koffi .async call or a worker
// (the first design; docs/architecture.md, "The event loop")? Measured on this machine (eventfd
// written by a worker, time until the JS callback runs on the main thread):
// uv_poll 4.6 us median, epoll_wait through koffi .async 27 us; and a pending
// .async call pins a libuv pool thread and keeps process.exit() waiting.
// koffi.node.poll is typed in koffi's index.d.ts (PollHandle) but marked
// "not yet documented" in its changelog: if a koffi upgrade breaks it, this
// file is the only place to change.

import koffi from 'koffi';

type PollHandle = ReturnType<typeof koffi.node.poll>;

export class FdWatcher {
  private readonly handles = new Map<number, PollHandle>();
  private closed = false;

  /**
   * Calls `onReadable` each time `fd` is readable. It is level-triggered:
   * the callback must drain the fd (e.g. EventFd.consume()) or it fires again.
   * libuv makes the fd non-blocking. Unwatch an fd before closing it.
   */
  watch(fd: number, onReadable: () => void): void {
    if (this.closed) throw new Error('FdWatcher is closed');
    if (this.handles.has(fd)) throw new Error(`fd ${fd} is already watched`);
    const handle = koffi.node.poll(fd, { readable: true }, () => onReadable());
    this.handles.set(fd, handle);
  }

  unwatch(fd: number): void {
    const handle = this.handles.get(fd);
    if (handle === undefined) return;
    this.handles.delete(fd);
    handle.close();
  }

  /** Number of fds being watched. */
  get size(): number {
    return this.handles.size;
  }

  /** Stops watching every fd (the fds themselves stay open: they are not ours). */
  close(): void {
    this.closed = true;
    for (const fd of [...this.handles.keys()]) this.unwatch(fd);
  }
}
