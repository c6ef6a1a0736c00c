// One logger for what tsvmm notices about the guest: a driver writing a
// register it must not, a byte dropped from a full device buffer, a packet
// refused. Such things are the guest's business and usually harmless, and a
// guest can repeat them as fast as it likes, so the logger is
//   - quiet unless TSVMM_DEBUG is set (the host's stderr belongs to the user,
//     and to the guest's serial console when that is on stdio),
//   - rate-limited per kind of message: a guest looping on one mistake costs
//     a few lines per second, not one line per mistake, and cannot hide
//     another kind of message,
//   - counting every report, printed or not, so that tests (and a trace mode)
//     can see what happened without reading stderr.
//
// It lives at the top of src/ because every layer uses it (bus, devices,
// the VM); it depends on nothing but its sink and its clock.

/** Lines printed per kind in one window before the rest of the window is only counted. */
export const LOG_LINES_PER_WINDOW = 10;
/** The rate limit's window (milliseconds). */
export const LOG_WINDOW_MS = 1000;

export interface GuestLogOptions {
  /** Print reports at all (default: TSVMM_DEBUG is set and is not "0"). */
  enabled?: boolean;
  /** Where lines go, one call per line (default: process.stderr). */
  write?: (line: string) => void;
  /** A monotonic clock in milliseconds (default: performance.now()); tests pass a fake one. */
  now?: () => number;
}

interface KindState {
  count: number;
  windowStart: number;
  printedInWindow: number;
  suppressedInWindow: number;
}

/** True when the environment asks for debug output: TSVMM_DEBUG is set and is not "0" (as src/cli.ts reads it). */
export function debugEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.TSVMM_DEBUG !== undefined && env.TSVMM_DEBUG !== '0';
}

/**
 * Reports of guest behaviour, counted per kind and printed (when enabled) at
 * most {@link LOG_LINES_PER_WINDOW} times per kind per {@link LOG_WINDOW_MS};
 * the first report after a window that suppressed some is preceded by one
 * "N more suppressed" line.
 */
export class GuestLog {
  private readonly enabled: boolean;
  private readonly write: (line: string) => void;
  private readonly now: () => number;
  private readonly kinds = new Map<string, KindState>();

  constructor(options: GuestLogOptions = {}) {
    this.enabled = options.enabled ?? debugEnabled();
    this.write = options.write ?? ((line) => process.stderr.write(line));
    this.now = options.now ?? (() => performance.now());
  }

  /**
   * Reports one event. `kind` groups messages for counting and rate limiting
   * (e.g. "virtio-mmio: bad register access"), so it must not contain the
   * variable parts; `message` is the line itself, printed as "tsvmm: kind: message".
   */
  report(kind: string, message: string): void {
    const state = this.stateOf(kind);
    state.count++;
    if (!this.enabled) return;
    const now = this.now();
    if (now - state.windowStart >= LOG_WINDOW_MS) {
      this.flushKind(kind, state);
      state.windowStart = now;
      state.printedInWindow = 0;
    }
    if (state.printedInWindow < LOG_LINES_PER_WINDOW) {
      state.printedInWindow++;
      this.write(`tsvmm: ${kind}: ${message}\n`);
    } else {
      state.suppressedInWindow++;
    }
  }

  /** How many times `kind` was reported since the start (printed or not). */
  count(kind: string): number {
    return this.kinds.get(kind)?.count ?? 0;
  }

  /** Every kind reported so far, with its count. */
  counts(): ReadonlyMap<string, number> {
    return new Map([...this.kinds].map(([kind, state]) => [kind, state.count]));
  }

  /** Prints the pending "N more suppressed" lines (e.g. when the VM stops). */
  flush(): void {
    if (!this.enabled) return;
    for (const [kind, state] of this.kinds) this.flushKind(kind, state);
  }

  private flushKind(kind: string, state: KindState): void {
    if (state.suppressedInWindow === 0) return;
    this.write(`tsvmm: ${kind}: ${state.suppressedInWindow} more suppressed\n`);
    state.suppressedInWindow = 0;
  }

  private stateOf(kind: string): KindState {
    let state = this.kinds.get(kind);
    if (state === undefined) {
      state = { count: 0, windowStart: Number.NEGATIVE_INFINITY, printedInWindow: 0, suppressedInWindow: 0 };
      this.kinds.set(kind, state);
    }
    return state;
  }
}

/** The process's logger, which devices report to unless a test hands them their own. */
export const guestLog = new GuestLog();
