// Cloud Hypervisor style option lists: `--disk path=/x.img,readonly=on`.
// Items are separated by commas; a value containing a comma can be quoted
// (`path="/a,b.img"`), and commas inside brackets belong to the value
// (`affinity=[0@[0-1],1@[2]]`, as Cloud Hypervisor writes lists). Keys are
// checked against the option's list so a typo is reported instead of
// silently ignored.
import { ConfigError } from './types.js';

export interface KeyValueSpec {
  /** Every key the option understands, in the order the help lists them. */
  readonly keys: readonly string[];
  /** A lone value without `=` means this key (`--cpus 2` = `--cpus boot=2`). */
  readonly shorthandKey?: string;
}

/** Parses `text` into key -> value; unknown, duplicate or malformed items are ConfigErrors. */
export function parseKeyValueList(option: string, text: string, spec: KeyValueSpec): Map<string, string> {
  const items = splitItems(option, text);
  const result = new Map<string, string>();
  for (const item of items) {
    const equals = item.text.indexOf('=');
    if (equals < 0) {
      if (spec.shorthandKey !== undefined && items.length === 1 && item.text !== '') {
        result.set(spec.shorthandKey, item.text);
        continue;
      }
      throw new ConfigError(`${option}: expected key=value, got "${item.raw}" (valid keys: ${spec.keys.join(', ')})`);
    }
    const key = item.text.slice(0, equals);
    const value = item.text.slice(equals + 1);
    if (!spec.keys.includes(key)) {
      throw new ConfigError(`${option}: unknown key "${key}" (valid keys: ${spec.keys.join(', ')})`);
    }
    if (result.has(key)) {
      throw new ConfigError(`${option}: key "${key}" given twice`);
    }
    if (value === '') {
      throw new ConfigError(`${option}: ${key}= needs a value`);
    }
    result.set(key, value);
  }
  return result;
}

/** The value of a key the option cannot do without. */
export function requireKey(option: string, values: Map<string, string>, key: string, example: string): string {
  const value = values.get(key);
  if (value === undefined) {
    throw new ConfigError(`${option}: missing ${key}= (e.g. ${option} ${example})`);
  }
  return value;
}

interface Item {
  /** The item with quotes removed. */
  text: string;
  /** The item as typed, for messages. */
  raw: string;
}

function splitItems(option: string, text: string): Item[] {
  if (text === '') throw new ConfigError(`${option}: needs a value`);
  const items: Item[] = [];
  let current = '';
  let start = 0;
  let quoted = false;
  let bracketDepth = 0;
  for (let i = 0; i <= text.length; i++) {
    const char = text[i];
    if (char === '"') {
      quoted = !quoted;
    } else if ((char === ',' && !quoted && bracketDepth === 0) || char === undefined) {
      if (quoted) throw new ConfigError(`${option}: unterminated quote in "${text}"`);
      if (bracketDepth !== 0) throw new ConfigError(`${option}: unbalanced brackets in "${text}"`);
      if (current === '') {
        throw new ConfigError(`${option}: empty item in "${text}" (stray comma?)`);
      }
      items.push({ text: current, raw: text.slice(start, i) });
      current = '';
      start = i + 1;
    } else {
      if (!quoted && char === '[') bracketDepth += 1;
      if (!quoted && char === ']') bracketDepth -= 1;
      current += char;
    }
  }
  return items;
}
