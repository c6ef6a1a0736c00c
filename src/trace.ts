// `--trace LIST`: what the VM does, one line per event, for people who read
// tsvmm to learn how a VMM works (and for anyone debugging a guest).
//
//   exits   every vCPU exit, with KVM's reason (from the vCPU threads)
//   pio     port I/O, decoded by device and register name
//   mmio    MMIO, decoded the same way (virtio-mmio registers by name)
//   virtio  virtqueue activity: chains taken from the available ring, used entries, interrupts
//   vsock   every vsock packet, decoded (op, src and dst cid:port, len, credit, flags)
//   blk     every block request (type, sector, bytes, status)
//
// Lines go to stderr or to `--trace-file PATH`, written synchronously so that
// they interleave with nothing and are all there if tsvmm dies. The cost when
// off is one boolean test per event: each category is a plain field,
// checked before any line is built (`if (trace.vsock) trace.line(...)`).
//
// Like the guest log (log.ts), the tracer is one object for the process,
// configured when a VM starts: every layer can reach it without threading it
// through constructors.
import { closeSync, openSync, writeSync } from 'node:fs';

/** Every category `--trace` knows, in the order the help text lists them. */
export const TRACE_CATEGORIES = ['exits', 'pio', 'mmio', 'virtio', 'vsock', 'blk'] as const;
/** One kind of traced event; `--trace` takes a comma-separated list of them (or `all`). */
export type TraceCategory = (typeof TRACE_CATEGORIES)[number];

/** What a VM traces, and where to: `--trace LIST` and `--trace-file PATH`. */
export interface TraceConfig {
  /** The categories turned on. */
  categories: readonly TraceCategory[];
  /** Where lines go; standard error when absent. The file is created or truncated. */
  file?: string;
}

/** Where the lines of a trace go: a file descriptor written synchronously (see the header). */
export interface TraceSink {
  readonly fd: number;
  /** Closes the sink's file, if it opened one. */
  close(): void;
}

const STDERR_FD = 2;

/** Opens the trace's destination: the file (created or truncated), or standard error. */
export function openTraceSink(file: string | undefined): TraceSink {
  if (file === undefined) return { fd: STDERR_FD, close: () => {} };
  const fd = openSync(file, 'w');
  return { fd, close: () => closeSync(fd) };
}

/** The process's tracer: off until a VM turns categories on. */
export class Tracer {
  exits = false;
  pio = false;
  mmio = false;
  virtio = false;
  vsock = false;
  blk = false;
  private fd: number | undefined;
  /** When the trace started, on the clock every thread shares (see {@link traceClock}). */
  private startedAt = 0;

  /** Turns `categories` on, writing lines to `fd`; every other category off. */
  configure(categories: readonly TraceCategory[], fd: number): void {
    for (const category of TRACE_CATEGORIES) this[category] = categories.includes(category);
    this.fd = categories.length > 0 ? fd : undefined;
    this.startedAt = traceClock();
  }

  /** The trace's start on {@link traceClock}: the vCPU threads time their lines from it too. */
  get startTime(): number {
    return this.startedAt;
  }

  /** Everything off (the VM stopped). */
  reset(): void {
    this.configure([], STDERR_FD);
  }

  /** The file descriptor lines go to, while any category is on. */
  get sinkFd(): number | undefined {
    return this.fd;
  }

  /** Writes one line: `<ms since start> <category> <text>`. Callers test the category's field first. */
  line(category: TraceCategory, text: string): void {
    if (this.fd === undefined) return;
    writeTraceLine(this.fd, this.startedAt, category, text);
  }
}

/** Milliseconds on a clock that all threads share (each thread's performance.now() has its own origin). */
export function traceClock(): number {
  return performance.timeOrigin + performance.now();
}

/** One trace line, as the main thread and the vCPU threads both write it: `<ms since start> <category> <text>`. */
export function writeTraceLine(fd: number, startTime: number, category: string, text: string): void {
  const time = (traceClock() - startTime).toFixed(3);
  try {
    writeSync(fd, `${time.padStart(10)} ${category.padEnd(6)} ${text}\n`);
  } catch {
    // A trace that cannot be written (a closed pipe) must not stop the VM.
  }
}

/** The tracer every layer writes to. */
export const trace = new Tracer();

/** A little-endian access's value (1 to 8 bytes). */
export function accessValue(data: Uint8Array): bigint {
  let value = 0n;
  for (let i = data.byteLength - 1; i >= 0; i--) value = (value << 8n) | BigInt(data[i]!);
  return value;
}
