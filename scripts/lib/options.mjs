// Numeric command-line options of the benchmark scripts: `--runs 5`.
export function numberOption(name, fallback) {
  const at = process.argv.indexOf(name);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
}
