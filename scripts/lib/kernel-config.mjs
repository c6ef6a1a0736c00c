// Kernel configuration files (.config and the fragments in
// guest-images/kernel/): reading them, and checking that a fragment's
// options survived Kconfig's dependency resolution.

/** Reads `CONFIG_X=value` / `# CONFIG_X is not set` lines into a map ('n' for "is not set"). */
export function parseConfig(text) {
  const options = new Map();
  for (const line of text.split('\n')) {
    const set = /^(CONFIG_\w+)=(.*)$/.exec(line);
    const unset = /^# (CONFIG_\w+) is not set$/.exec(line);
    if (set) options.set(set[1], set[2]);
    else if (unset) options.set(unset[1], 'n');
  }
  return options;
}

/**
 * Fails when an option of the fragment did not make it into .config: one
 * asked for whose dependencies are missing (Kconfig drops it silently), or
 * one the fragment says "is not set" that something selected anyway.
 */
export function verifyConfig(name, fragment, finalConfig) {
  const wanted = parseConfig(fragment);
  const got = parseConfig(finalConfig);
  const wrong = [...wanted].filter(([key, value]) => (got.get(key) ?? 'n') !== value);
  if (wrong.length > 0) {
    const lines = wrong.map(([key, value]) => `  ${key}: wanted ${value}, got ${got.get(key) ?? 'n'}`);
    throw new Error(`${name} kernel config: options not applied (missing dependencies?):\n${lines.join('\n')}`);
  }
}
