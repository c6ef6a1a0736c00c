// The host side of a character device (8250 serial, virtio-console): where
// guest output goes and where user input comes from. Chosen by the
// `--serial` / `--console` options: tty, null, file=PATH (off = no device),
// and for library callers, pipe.
import type { Duplex } from 'node:stream';

export interface CharBackend {
  /**
   * Queues guest output. Never drops bytes: returns false when the host side
   * is full and the device should stop taking output from the guest until
   * `onDrain` fires (back-pressure, so a slow terminal or file never loses data).
   */
  write(data: Uint8Array): boolean;
  /** Called once the backend can take more output after write() returned false. */
  onDrain(callback: () => void): void;
  /** Called with input for the guest (the terminal in tty mode; never for null/file). */
  onInput(callback: (data: Uint8Array) => void): void;
  /** pipe mode: the caller's end (vm.serial, vm.console). */
  readonly callerEnd?: Duplex;
  /** Flushes pending output, restores the terminal, closes files. */
  close(): Promise<void>;
}
