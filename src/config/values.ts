// Parsers for the values inside option lists: whole numbers, sizes with a
// K/M/G suffix, on/off switches. Each failure is a one-line ConfigError that
// names the option and key, and shows what was given.
import { ConfigError, GiB, KiB, MiB } from './types.js';

/** A non-negative whole number, decimal or 0x-prefixed hexadecimal. */
export function parseWholeNumber(option: string, key: string, text: string): number {
  const decimal = /^[0-9]+$/.test(text);
  const hex = /^0x[0-9a-f]+$/i.test(text);
  const value = decimal || hex ? Number(text) : NaN;
  if (!Number.isSafeInteger(value)) {
    throw new ConfigError(`${option}: ${key} must be a whole number, got "${text}"`);
  }
  return value;
}

const SIZE_UNITS: Record<string, number> = { '': 1, K: KiB, M: MiB, G: GiB };

/** A size in bytes: `N` (bytes) or `N` followed by K, M or G (powers of 1024, as Cloud Hypervisor reads them). */
export function parseSize(option: string, key: string, text: string): number {
  const match = /^([0-9]+)([KMG]?)$/i.exec(text);
  const bytes = match ? Number(match[1]) * SIZE_UNITS[match[2]!.toUpperCase()]! : NaN;
  if (!Number.isSafeInteger(bytes)) {
    throw new ConfigError(`${option}: ${key} must be a number of bytes with an optional K, M or G suffix (e.g. 512M), got "${text}"`);
  }
  return bytes;
}

/** `on`/`off` (and `true`/`false`, which Cloud Hypervisor also accepts). */
export function parseOnOff(option: string, key: string, text: string): boolean {
  switch (text) {
    case 'on':
    case 'true':
      return true;
    case 'off':
    case 'false':
      return false;
    default:
      throw new ConfigError(`${option}: ${key} must be on or off, got "${text}"`);
  }
}

/** Renders a byte count the way a user would type it back: 64M, 1G, 4096. */
export function formatSize(bytes: number): string {
  for (const [suffix, unit] of [['G', GiB], ['M', MiB], ['K', KiB]] as const) {
    if (bytes >= unit && bytes % unit === 0) return `${bytes / unit}${suffix}`;
  }
  return String(bytes);
}
