// Small statistics for benchmarks: these machines are noisy (docs/architecture.md, "The development machines"),
// so every benchmark reports medians over several runs and compares ratios
// measured in the same run, never absolute numbers across runs.
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function formatRow(columns, widths) {
  return columns.map((c, i) => String(c).padEnd(widths[i] ?? 12)).join('  ');
}

/** `[min-max]` of the samples, to `digits` decimals: the spread that goes with a median. */
export function spread(values, digits = 0) {
  return `[${Math.min(...values).toFixed(digits)}-${Math.max(...values).toFixed(digits)}]`;
}

/** `412 [380-455]`: the median and the spread that goes with it, to `digits` decimals. */
export function medianAndSpread(values, digits = 0) {
  return `${median(values).toFixed(digits)} ${spread(values, digits)}`;
}
