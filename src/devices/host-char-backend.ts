// The host ends of a character device (`--serial` / `--console`):
//   tty        guest output to stdout, keyboard (or piped stdin) to the guest;
//              a terminal is put in raw mode so keys reach the guest as typed
//   null       output discarded, no input
//   file=PATH  output to a file (created or truncated), no input
//   pipe       (library only) a stream the caller reads and writes: pipe-char-backend.ts
// Output is never dropped: bytes are queued, and write() returns false once
// the queue is past its high-water mark so that the device can slow the guest
// down until onDrain (see char-backend.ts).
import { createWriteStream, fsync, openSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import type { CharMode } from '../config.js';
import { ConfigError } from '../config/types.js';
import type { CharBackend } from './char-backend.js';
import { PipeBackend } from './pipe-char-backend.js';

/** The host side failed: a file could not be opened or written. */
export class CharBackendError extends ConfigError {
  override readonly name = 'CharBackendError';
}

/** stdin as the tty backend uses it (process.stdin, or a fake in tests). */
export type InputStream = Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };

export interface CharBackendOptions {
  /** tty mode: where input comes from (default process.stdin). */
  stdin?: InputStream;
  /** tty mode: where output goes (default process.stdout). */
  stdout?: Writable;
  /**
   * tty mode on a terminal: Ctrl-A x calls this (as in QEMU), since raw mode
   * sends Ctrl-C to the guest. Ctrl-A Ctrl-A sends one Ctrl-A. Without it,
   * every key goes to the guest.
   */
  onQuitRequest?: () => void;
}

/** Output queued beyond this makes write() return false. */
const HIGH_WATER_MARK = 64 * 1024;
const CTRL_A = 0x01;

/** Opens the host end for `mode`; `off` means "no device" and has no backend. */
export function openCharBackend(mode: CharMode, options: CharBackendOptions = {}): CharBackend {
  switch (mode.kind) {
    case 'tty':
      return new TtyBackend(options.stdin ?? process.stdin, options.stdout ?? process.stdout, options.onQuitRequest);
    case 'null':
      return nullBackend();
    case 'file':
      return new FileBackend(mode.path);
    case 'pipe':
      return new PipeBackend();
    case 'off':
      throw new Error('openCharBackend: mode "off" means no device; the caller must not create one');
  }
}

// Terminals currently in raw mode, so they can be restored from anywhere.
const rawTerminals = new Set<InputStream>();
let exitHookInstalled = false;

/**
 * Puts every terminal this module made raw back into cooked mode. Synchronous
 * and idempotent: safe in signal handlers and `process.on('exit')`. It is
 * already hooked to 'exit' (which also runs after an uncaught exception);
 * call it yourself before exiting from a signal handler.
 */
export function restoreTerminal(): void {
  for (const stdin of rawTerminals) {
    try {
      stdin.setRawMode?.(false);
    } catch {
      // The terminal is gone; nothing left to restore.
    }
  }
  rawTerminals.clear();
}

function nullBackend(): CharBackend {
  return {
    write: () => true,
    onDrain: () => {},
    onInput: () => {},
    close: async () => {},
  };
}

/**
 * Queues output for a stream. Bytes written in one turn of the event loop
 * (a burst of THR writes, say) go to the stream as one chunk, which saves a
 * system call per byte on the terminal.
 */
class OutputQueue {
  private chunks: Uint8Array[] = [];
  private queuedBytes = 0;
  private flushScheduled = false;
  private inFlight = 0;
  private blocked = false;
  private failure: Error | undefined;
  private readonly drainListeners: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly stream: Writable, private readonly describe: string) {
    stream.on('drain', () => this.releaseIfDrained());
    stream.on('error', (error: Error) => { this.failure ??= error; });
  }

  write(data: Uint8Array): boolean {
    if (this.failure) return true; // Nowhere to write; close() reports why.
    this.chunks.push(data.slice()); // The device may reuse its buffer.
    this.queuedBytes += data.byteLength;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
    if (this.queuedBytes + this.stream.writableLength >= HIGH_WATER_MARK || this.stream.writableNeedDrain) {
      this.blocked = true;
    }
    return !this.blocked;
  }

  onDrain(listener: () => void): void {
    this.drainListeners.push(listener);
  }

  /** Resolves once every queued byte has been handed to the OS; rejects if writing failed. */
  async flushed(): Promise<void> {
    this.flush();
    if (this.inFlight > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    if (this.failure) throw new CharBackendError(`${this.describe}: ${this.failure.message}`);
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.queuedBytes === 0 || this.failure) return;
    const data = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.chunks = [];
    this.queuedBytes = 0;
    this.inFlight++;
    this.stream.write(data, (error) => {
      if (error) this.failure ??= error;
      if (--this.inFlight === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const resolve of waiters) resolve();
      }
    });
    this.releaseIfDrained();
  }

  private releaseIfDrained(): void {
    if (!this.blocked || this.stream.writableNeedDrain || this.queuedBytes > 0) return;
    this.blocked = false;
    for (const listener of this.drainListeners) listener();
  }
}

class TtyBackend implements CharBackend {
  private readonly output: OutputQueue;
  private readonly inputListeners: ((data: Uint8Array) => void)[] = [];
  private escapePending = false;
  private closing: Promise<void> | undefined;
  private readonly onData = (chunk: Buffer) => this.receive(chunk);

  constructor(private readonly stdin: InputStream, stdout: Writable, private readonly onQuitRequest?: () => void) {
    this.output = new OutputQueue(stdout, 'writing to stdout');
    if (stdin.isTTY && stdin.setRawMode) {
      stdin.setRawMode(true);
      rawTerminals.add(stdin);
      if (!exitHookInstalled) {
        exitHookInstalled = true;
        process.on('exit', restoreTerminal);
      }
    }
  }

  write(data: Uint8Array): boolean {
    return this.output.write(data);
  }

  onDrain(callback: () => void): void {
    this.output.onDrain(callback);
  }

  onInput(callback: (data: Uint8Array) => void): void {
    this.inputListeners.push(callback);
    if (this.inputListeners.length === 1) {
      this.stdin.on('data', this.onData);
      this.stdin.resume();
    }
  }

  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.stdin.off('data', this.onData);
    this.stdin.pause();
    if (rawTerminals.delete(this.stdin)) this.stdin.setRawMode?.(false);
    await this.output.flushed();
  }

  private receive(chunk: Buffer): void {
    const data = this.onQuitRequest && this.stdin.isTTY ? this.filterEscapes(chunk) : chunk;
    if (data.byteLength === 0) return;
    for (const listener of this.inputListeners) listener(data);
  }

  /** Handles Ctrl-A x (quit) and Ctrl-A Ctrl-A (a literal Ctrl-A); other Ctrl-A pairs pass through. */
  private filterEscapes(chunk: Buffer): Uint8Array {
    const out: number[] = [];
    for (const byte of chunk) {
      if (this.escapePending) {
        this.escapePending = false;
        if (byte === 0x78 /* x */) {
          this.onQuitRequest!();
          continue;
        }
        if (byte !== CTRL_A) out.push(CTRL_A);
        out.push(byte);
      } else if (byte === CTRL_A) {
        this.escapePending = true;
      } else {
        out.push(byte);
      }
    }
    return Uint8Array.from(out);
  }
}

class FileBackend implements CharBackend {
  private readonly fd: number;
  private readonly stream: Writable;
  private readonly output: OutputQueue;
  private closing: Promise<void> | undefined;

  constructor(private readonly path: string) {
    try {
      this.fd = openSync(path, 'w');
    } catch (error) {
      throw new CharBackendError(`cannot open output file ${path}: ${(error as Error).message}`);
    }
    this.stream = createWriteStream(path, { fd: this.fd, highWaterMark: HIGH_WATER_MARK });
    this.output = new OutputQueue(this.stream, `writing ${path}`);
  }

  write(data: Uint8Array): boolean {
    return this.output.write(data);
  }

  onDrain(callback: () => void): void {
    this.output.onDrain(callback);
  }

  onInput(): void {
    // A file gives the guest no input.
  }

  /** Resolves when every byte is written and fsync()ed. */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    try {
      await this.output.flushed();
      await new Promise<void>((resolve, reject) => fsync(this.fd, (error) => (error ? reject(error) : resolve())));
    } catch (error) {
      throw error instanceof CharBackendError ? error : new CharBackendError(`writing ${this.path}: ${(error as Error).message}`);
    } finally {
      // The stream owns the descriptor (autoClose): ending it closes the file.
      if (!this.stream.closed) {
        await new Promise<void>((resolve) => {
          this.stream.once('close', () => resolve());
          this.stream.end();
        });
      }
    }
  }
}
