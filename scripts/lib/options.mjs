// The benchmark and tool scripts' command-line flags: `--runs 5`, `--no-guest`.

/**
 * `--name value` flags over `defaults` (a number default makes a number
 * flag; a boolean default, false, makes a switch: `--name` alone turns it
 * on). Prints `usage` and exits 2 on an unknown flag or a bad number.
 */
export function parseFlags(argv, defaults, usage) {
  const flags = { ...defaults };
  const fail = (message) => {
    console.error(`${message}\n\n${usage}`);
    process.exit(2);
  };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--help' || argv[i] === '-h') {
      console.log(usage);
      process.exit(0);
    }
    const name = argv[i].replace(/^--/, '');
    if (!argv[i].startsWith('--') || !(name in defaults)) fail(`unknown option: ${argv[i]}`);
    if (typeof defaults[name] === 'boolean') {
      flags[name] = true;
      continue;
    }
    if (i + 1 >= argv.length) fail(`${argv[i]} needs a value`);
    const value = argv[++i];
    if (typeof defaults[name] === 'number') {
      if (!Number.isFinite(Number(value)) || Number(value) < 0) fail(`${argv[i - 1]} takes a number`);
      flags[name] = Number(value);
    } else flags[name] = value;
  }
  return flags;
}
