import { describe, expect, it } from 'vitest';
import { parseKeyValueList, requireKey } from '../../../src/config/key-value.js';
import { formatSize, parseOnOff, parseSize, parseWholeNumber } from '../../../src/config/values.js';

const disk = { keys: ['path', 'readonly', 'id'] };

describe('parseKeyValueList', () => {
  it('splits key=value items on commas', () => {
    expect([...parseKeyValueList('--disk', 'path=/a.img,readonly=on,id=x', disk)]).toEqual([
      ['path', '/a.img'],
      ['readonly', 'on'],
      ['id', 'x'],
    ]);
  });

  it('keeps everything after the first = in the value', () => {
    expect(parseKeyValueList('--disk', 'path=/a=b.img', disk).get('path')).toBe('/a=b.img');
  });

  it('lets a quoted value contain commas', () => {
    expect(parseKeyValueList('--disk', 'path="/a,b.img",id=x', disk).get('path')).toBe('/a,b.img');
  });

  it('keeps commas inside brackets in the value (Cloud Hypervisor lists)', () => {
    const values = parseKeyValueList('--cpus', 'boot=2,affinity=[0@[0-1],1@[2]]', { keys: ['boot', 'affinity'] });
    expect([...values]).toEqual([['boot', '2'], ['affinity', '[0@[0-1],1@[2]]']]);
  });

  it('reads a lone value as the shorthand key', () => {
    expect(parseKeyValueList('--cpus', '4', { keys: ['boot'], shorthandKey: 'boot' }).get('boot')).toBe('4');
  });

  it.each([
    ['size=1G', '--disk: unknown key "size" (valid keys: path, readonly, id)'],
    ['path=a,path=b', '--disk: key "path" given twice'],
    ['path=', '--disk: path= needs a value'],
    ['path=a,,id=x', '--disk: empty item in "path=a,,id=x" (stray comma?)'],
    ['path=a,', '--disk: empty item in "path=a," (stray comma?)'],
    ['/a.img', '--disk: expected key=value, got "/a.img" (valid keys: path, readonly, id)'],
    ['path="/a.img', '--disk: unterminated quote in "path="/a.img"'],
    ['path=[a,id=x', '--disk: unbalanced brackets in "path=[a,id=x"'],
    ['', '--disk: needs a value'],
  ])('rejects %j', (text, message) => {
    expect(() => parseKeyValueList('--disk', text, disk)).toThrow(message);
  });

  it('allows no shorthand when other items are present', () => {
    expect(() => parseKeyValueList('--cpus', '4,boot=2', { keys: ['boot'], shorthandKey: 'boot' })).toThrow(
      '--cpus: expected key=value, got "4" (valid keys: boot)',
    );
  });

  it('requireKey names the option, the key and an example', () => {
    const values = parseKeyValueList('--vsock', 'cid=3', { keys: ['cid', 'socket'] });
    expect(() => requireKey('--vsock', values, 'socket', 'cid=3,socket=/tmp/vm.vsock')).toThrow(
      '--vsock: missing socket= (e.g. --vsock cid=3,socket=/tmp/vm.vsock)',
    );
  });
});

describe('values', () => {
  it('parses decimal and hexadecimal whole numbers', () => {
    expect(parseWholeNumber('--vsock', 'cid', '42')).toBe(42);
    expect(parseWholeNumber('--vsock', 'cid', '0xFFFFFFFE')).toBe(0xfffffffe);
  });

  it.each(['-1', '1.5', 'two', '', '0x', '99999999999999999999'])('rejects %j as a whole number', (text) => {
    expect(() => parseWholeNumber('--cpus', 'boot', text)).toThrow(`--cpus: boot must be a whole number, got "${text}"`);
  });

  it('parses sizes in bytes, K, M and G (powers of 1024, either case)', () => {
    expect(parseSize('--memory', 'size', '4096')).toBe(4096);
    expect(parseSize('--memory', 'size', '64K')).toBe(65536);
    expect(parseSize('--memory', 'size', '512M')).toBe(536870912);
    expect(parseSize('--memory', 'size', '2g')).toBe(2147483648);
  });

  it.each(['512MB', '1.5G', 'lots', 'M', '-1M'])('rejects size %j', (text) => {
    expect(() => parseSize('--memory', 'size', text)).toThrow(
      `--memory: size must be a number of bytes with an optional K, M or G suffix (e.g. 512M), got "${text}"`,
    );
  });

  it('parses on/off and true/false', () => {
    expect([parseOnOff('-d', 'ro', 'on'), parseOnOff('-d', 'ro', 'true'), parseOnOff('-d', 'ro', 'off'), parseOnOff('-d', 'ro', 'false')]).toEqual([
      true,
      true,
      false,
      false,
    ]);
    expect(() => parseOnOff('--disk', 'readonly', 'yes')).toThrow('--disk: readonly must be on or off, got "yes"');
  });

  it('formats sizes with the largest exact unit', () => {
    expect([formatSize(64 * 1024 * 1024), formatSize(1 << 30), formatSize(1536 * 1024), formatSize(1000)]).toEqual(['64M', '1G', '1536K', '1000']);
  });
});
