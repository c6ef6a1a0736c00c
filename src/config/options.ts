// One parser per command-line option: from the option's text to its typed
// configuration. Only the syntax is checked here; what the values mean
// (ranges, reserved CIDs, files) is checked in validate.ts, which library
// callers that build a VmConfig themselves go through too.
import { parseKeyValueList, requireKey } from './key-value.js';
import { parseCpuAffinity } from './cpu-affinity.js';
import { ConfigError, type CharMode, type DiskConfig, type VmConfig, type VsockConfig } from './types.js';
import { parseOnOff, parseSize, parseWholeNumber } from './values.js';
import { TRACE_CATEGORIES, type TraceCategory, type TraceConfig } from '../trace.js';

/** `--cpus boot=N[,affinity=[VCPU@[HOST CPUS],...]]` (or `--cpus N`). */
export function parseCpus(text: string): VmConfig['cpus'] {
  const values = parseKeyValueList('--cpus', text, { keys: ['boot', 'affinity'], shorthandKey: 'boot' });
  const cpus: VmConfig['cpus'] = { boot: parseWholeNumber('--cpus', 'boot', requireKey('--cpus', values, 'boot', 'boot=2')) };
  const affinity = values.get('affinity');
  if (affinity !== undefined) cpus.affinity = parseCpuAffinity(affinity);
  return cpus;
}

/** `--memory size=N[K|M|G]` (or `--memory N[K|M|G]`). */
export function parseMemory(text: string): { sizeBytes: number } {
  const values = parseKeyValueList('--memory', text, { keys: ['size'], shorthandKey: 'size' });
  return { sizeBytes: parseSize('--memory', 'size', requireKey('--memory', values, 'size', 'size=512M')) };
}

/** `--serial` / `--console`: `tty`, `off`, `null` or `file=PATH`. */
export function parseCharMode(option: string, text: string): CharMode {
  if (text === 'tty' || text === 'off' || text === 'null') return { kind: text };
  if (text.startsWith('file=')) {
    const path = text.slice('file='.length);
    if (path === '') throw new ConfigError(`${option}: file= needs a path`);
    return { kind: 'file', path };
  }
  throw new ConfigError(`${option}: unknown mode "${text}" (valid: tty, off, null, file=PATH)`);
}

/** `--disk path=PATH[,readonly=on|off][,id=NAME]`. */
export function parseDisk(text: string): DiskConfig {
  const values = parseKeyValueList('--disk', text, { keys: ['path', 'readonly', 'id'] });
  const disk: DiskConfig = {
    path: requireKey('--disk', values, 'path', 'path=disk.img'),
    readonly: parseOnOff('--disk', 'readonly', values.get('readonly') ?? 'off'),
  };
  const id = values.get('id');
  if (id !== undefined) disk.id = id;
  return disk;
}

/** `--vsock cid=N,socket=PATH`. */
export function parseVsock(text: string): VsockConfig {
  const values = parseKeyValueList('--vsock', text, { keys: ['cid', 'socket'] });
  const example = 'cid=3,socket=/tmp/vm.vsock';
  const cidText = requireKey('--vsock', values, 'cid', example);
  const socket = requireKey('--vsock', values, 'socket', example);
  // vsock tools write the wildcard CID as -1; accept the spelling so that
  // validation can say why it is refused.
  const cid = cidText === '-1' ? 0xffff_ffff : parseWholeNumber('--vsock', 'cid', cidText);
  return { cid, socket };
}

/** The longest `--timeout` accepted: a week, beyond any CI job and within setTimeout's limit (2^31 - 1 ms, 24.8 days). */
const MAX_TIMEOUT_SECONDS = 7 * 24 * 3600;

/** `--timeout SECONDS`: a positive number of seconds, fractions allowed (as timeout(1)). */
export function parseTimeout(text: string): number {
  const seconds = /^\d+(\.\d+)?$/.test(text) ? Number(text) : Number.NaN;
  if (!(seconds > 0 && seconds <= MAX_TIMEOUT_SECONDS)) {
    throw new ConfigError(`--timeout: "${text}" is not a positive number of seconds up to ${MAX_TIMEOUT_SECONDS} (e.g. --timeout 600)`);
  }
  return seconds;
}

/**
 * `--trace LIST` (comma-separated categories, or `all`) and `--trace-file
 * PATH`: a file alone traces everything into it.
 */
export function parseTrace(list: string | undefined, file: string | undefined): TraceConfig {
  const names = list === undefined || list === 'all' ? [...TRACE_CATEGORIES] : list.split(',').map((name) => name.trim());
  const unknown = names.filter((name) => !(TRACE_CATEGORIES as readonly string[]).includes(name));
  if (unknown.length > 0 || names.length === 0) {
    throw new ConfigError(`--trace: unknown category "${unknown[0] ?? ''}" (valid: ${TRACE_CATEGORIES.join(', ')}, or all)`);
  }
  if (file === '') throw new ConfigError('--trace-file: needs a path');
  const config: TraceConfig = { categories: [...new Set(names as TraceCategory[])] };
  if (file !== undefined) config.file = file;
  return config;
}
