// Progress for long steps: a line every few seconds with what is happening,
// so a kernel build that takes minutes never looks hung.

export function elapsed(startMs) {
  const s = Math.round((Date.now() - startMs) / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** Calls `describe()` every `everyMs` and prints it; returns a stop function. */
export function ticker(label, describe, everyMs = 15000) {
  const start = Date.now();
  const timer = setInterval(() => {
    console.log(`  ${label}: ${describe()} (${elapsed(start)})`);
  }, everyMs);
  return () => clearInterval(timer);
}

export function step(message) {
  console.log(`==> ${message}`);
}
