// EventFd and FdWatcher on real eventfds (no KVM needed). The writer is a
// worker-free stand-in for KVM: we signal the eventfd ourselves.

import { describe, expect, it } from 'vitest';
import { EventFd } from '../../../src/sys/eventfd.js';
import { FdWatcher } from '../../../src/sys/fd-watcher.js';
import { SystemCallError } from '../../../src/sys/system-error.js';
import { closeFd, libc } from '../../../src/sys/libc.js';

const nextTurn = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('EventFd', () => {
  it('adds signals up and consume() resets the counter', () => {
    const efd = EventFd.create();
    try {
      expect(efd.consume()).toBe(0n);
      efd.signal();
      efd.signal(41n);
      expect(efd.consume()).toBe(42n);
      expect(efd.consume()).toBe(0n);
    } finally {
      efd.close();
    }
    expect(() => efd.fd).toThrowError('eventfd is closed');
  });
});

describe('FdWatcher', () => {
  it('calls back on the main thread for each readable fd, until unwatched', async () => {
    const watcher = new FdWatcher();
    const a = EventFd.create();
    const b = EventFd.create();
    const seen: string[] = [];
    try {
      watcher.watch(a.fd, () => seen.push(`a${a.consume()}`));
      watcher.watch(b.fd, () => seen.push(`b${b.consume()}`));
      expect(watcher.size).toBe(2);
      a.signal(3n);
      while (seen.length < 1) await nextTurn();
      b.signal();
      while (seen.length < 2) await nextTurn();
      expect(seen).toEqual(['a3', 'b1']);

      watcher.unwatch(a.fd);
      a.signal();
      b.signal(2n);
      while (seen.length < 3) await nextTurn();
      await nextTurn();
      expect(seen).toEqual(['a3', 'b1', 'b2']);
      expect(a.consume()).toBe(1n); // a was signalled but no longer watched
    } finally {
      watcher.close();
      a.close();
      b.close();
    }
    expect(watcher.size).toBe(0);
    expect(() => watcher.watch(0, () => {})).toThrowError('FdWatcher is closed');
  });

  it('refuses to watch the same fd twice', () => {
    const watcher = new FdWatcher();
    const efd = EventFd.create();
    try {
      watcher.watch(efd.fd, () => efd.consume());
      expect(() => watcher.watch(efd.fd, () => {})).toThrowError(`fd ${efd.fd} is already watched`);
    } finally {
      watcher.close();
      efd.close();
    }
  });
});

describe('SystemCallError', () => {
  it('names the call, the errno and its description', () => {
    const error = new SystemCallError('KVM_CREATE_VM', 22);
    expect(error.message).toBe('KVM_CREATE_VM failed: EINVAL (Invalid argument)');
    expect([error.code, error.errno, error.call, error.name]).toEqual(['EINVAL', 22, 'KVM_CREATE_VM', 'SystemCallError']);
  });

  it('is what the checked libc helpers throw', () => {
    expect(libc.close(-1)).toBe(-1);
    expect(() => closeFd(-1)).toThrowError('close failed: EBADF (Bad file descriptor)');
  });
});
