// A small AML (ACPI Machine Language) encoder: just the objects tsvmm's DSDT
// needs. AML is the bytecode the guest's ACPI interpreter runs; the grammar
// is in ACPI 6.5 chapter 20 ("ACPI Machine Language Specification"), the
// resource descriptors inside _CRS buffers in section 6.4. Each function
// returns the bytes of one term, so a namespace is written as nested calls
// that read like the ASL they stand for:
//   amlScope('\\_SB_', [amlDevice('V000', [amlName('_HID', amlString('LNRO0005'))])])

/** Opcodes (ACPI 6.5 section 20.3). */
const Op = {
  Zero: 0x00,
  One: 0x01,
  Name: 0x08,
  BytePrefix: 0x0a,
  WordPrefix: 0x0b,
  DWordPrefix: 0x0c,
  StringPrefix: 0x0d,
  QWordPrefix: 0x0e,
  Scope: 0x10,
  Buffer: 0x11,
  Package: 0x12,
  DualNamePrefix: 0x2e,
  MultiNamePrefix: 0x2f,
  ExtOpPrefix: 0x5b,
  RootChar: 0x5c,
  Device: 0x82, // after ExtOpPrefix
} as const;

/** Resource descriptor tags (ACPI 6.5 section 6.4). */
const Resource = {
  IoPort: 0x47, // small item 0x08, length 7
  EndTag: 0x79, // small item 0x0f, length 1
  Memory32Fixed: 0x86, // large item 0x06
  ExtendedInterrupt: 0x89, // large item 0x09
} as const;

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(parts.reduce((total, part) => total + part.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.byteLength;
  }
  return bytes;
}

/**
 * PkgLength (section 20.2.4) for a body of `bodyLength` bytes: the encoded
 * length counts its own 1 to 4 bytes too. One byte holds up to 63; longer
 * ones put the low 4 bits in the lead byte (whose top two bits say how many
 * bytes follow) and the rest, 8 bits at a time, in the following bytes.
 */
export function pkgLength(bodyLength: number): Uint8Array {
  if (bodyLength + 1 <= 0x3f) return Uint8Array.of(bodyLength + 1);
  for (let extraBytes = 1; extraBytes <= 3; extraBytes++) {
    const total = bodyLength + 1 + extraBytes;
    if (total < 2 ** (4 + 8 * extraBytes)) {
      const bytes = new Uint8Array(1 + extraBytes);
      bytes[0] = (extraBytes << 6) | (total & 0x0f);
      for (let i = 1; i <= extraBytes; i++) bytes[i] = (total >> (4 + 8 * (i - 1))) & 0xff;
      return bytes;
    }
  }
  throw new Error(`AML package of ${bodyLength} bytes is too long`);
}

/** A package-like term: opcode bytes, PkgLength, then the body. */
function withPkgLength(opcode: readonly number[], body: Uint8Array): Uint8Array {
  return concatBytes([Uint8Array.from(opcode), pkgLength(body.byteLength), body]);
}

/**
 * NameString (section 20.2.2): a path like "\\_SB_.V000" or "_HID". Each
 * segment is exactly 4 characters (A-Z, 0-9, _; not starting with a digit);
 * shorter ones are padded with '_', as ASL compilers do.
 */
export function nameString(path: string): Uint8Array {
  const root = path.startsWith('\\');
  const segments = (root ? path.slice(1) : path).split('.').map(nameSegment);
  const prefix: number[] = root ? [Op.RootChar] : [];
  if (segments.length === 2) prefix.push(Op.DualNamePrefix);
  else if (segments.length > 2) prefix.push(Op.MultiNamePrefix, segments.length);
  return concatBytes([Uint8Array.from(prefix), ...segments]);
}

function nameSegment(segment: string): Uint8Array {
  if (!/^[A-Z_][A-Z0-9_]{0,3}$/.test(segment)) throw new Error(`invalid AML name segment "${segment}"`);
  return new TextEncoder().encode(segment.padEnd(4, '_'));
}

/** An Integer in its shortest encoding (section 20.2.3): ZeroOp, OneOp, or a prefixed 1, 2, 4 or 8-byte value. */
export function amlInteger(value: number | bigint): Uint8Array {
  const n = BigInt(value);
  if (n < 0n || n >= 2n ** 64n) throw new Error(`AML integer ${value} out of range`);
  if (n === 0n) return Uint8Array.of(Op.Zero);
  if (n === 1n) return Uint8Array.of(Op.One);
  const [prefix, size] = n <= 0xffn ? [Op.BytePrefix, 1] : n <= 0xffffn ? [Op.WordPrefix, 2]
    : n <= 0xffff_ffffn ? [Op.DWordPrefix, 4] : [Op.QWordPrefix, 8];
  const bytes = new Uint8Array(1 + size);
  bytes[0] = prefix;
  for (let i = 0; i < size; i++) bytes[1 + i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return bytes;
}

/** A String (section 20.2.3): ASCII, NUL-terminated. */
export function amlString(text: string): Uint8Array {
  if (!/^[\x01-\x7f]*$/.test(text)) throw new Error(`AML string "${text}" must be ASCII without NUL`);
  return concatBytes([Uint8Array.of(Op.StringPrefix), new TextEncoder().encode(text), Uint8Array.of(0)]);
}

/**
 * ASL's EisaId("PNP0501"): a 32-bit integer holding three letters in 5 bits
 * each and four hex digits, stored so that its bytes read 0x41 0xD0 0x05
 * 0x01 (ACPI 6.5 section 19.6.35, EISAID).
 */
export function amlEisaId(id: string): Uint8Array {
  if (!/^[A-Z]{3}[0-9A-F]{4}$/.test(id)) throw new Error(`invalid EISA id "${id}"`);
  const letters = [0, 1, 2].map((i) => id.charCodeAt(i) - 0x40);
  const vendor = (letters[0]! << 10) | (letters[1]! << 5) | letters[2]!;
  const product = parseInt(id.slice(3), 16);
  const bytes = Uint8Array.of(vendor >> 8, vendor & 0xff, product >> 8, product & 0xff);
  return concatBytes([Uint8Array.of(Op.DWordPrefix), bytes]);
}

/** Name(path, value): binds a data object to a name (section 20.2.5.1, DefName). */
export function amlName(path: string, value: Uint8Array): Uint8Array {
  return concatBytes([Uint8Array.of(Op.Name), nameString(path), value]);
}

/** Package() { elements } (section 20.2.5.4, DefPackage): at most 255 elements. */
export function amlPackage(elements: readonly Uint8Array[]): Uint8Array {
  if (elements.length > 0xff) throw new Error('AML package with more than 255 elements');
  return withPkgLength([Op.Package], concatBytes([Uint8Array.of(elements.length), ...elements]));
}

/** Buffer() { bytes } (section 20.2.5.4, DefBuffer): the size is an Integer term before the bytes. */
export function amlBuffer(bytes: Uint8Array): Uint8Array {
  return withPkgLength([Op.Buffer], concatBytes([amlInteger(bytes.byteLength), bytes]));
}

/** Scope(path) { terms } (section 20.2.5.1, DefScope). */
export function amlScope(path: string, terms: readonly Uint8Array[]): Uint8Array {
  return withPkgLength([Op.Scope], concatBytes([nameString(path), ...terms]));
}

/** Device(path) { terms } (section 20.2.5.2, DefDevice). */
export function amlDevice(path: string, terms: readonly Uint8Array[]): Uint8Array {
  return withPkgLength([Op.ExtOpPrefix, Op.Device], concatBytes([nameString(path), ...terms]));
}

/**
 * ResourceTemplate() { descriptors }: a Buffer holding the descriptors and
 * an End Tag (section 6.4.2.9) whose checksum byte is 0, which means "no
 * checksum" and is what ASL compilers emit.
 */
export function resourceTemplate(descriptors: readonly Uint8Array[]): Uint8Array {
  return amlBuffer(concatBytes([...descriptors, Uint8Array.of(Resource.EndTag, 0)]));
}

/** Memory32Fixed(ReadWrite, base, length) (section 6.4.3.4). */
export function memory32Fixed(base: number, length: number): Uint8Array {
  const bytes = new Uint8Array(12);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, Resource.Memory32Fixed);
  view.setUint16(1, 9, true); // length of the data that follows
  view.setUint8(3, 1); // bit 0: read-write
  view.setUint32(4, base, true);
  view.setUint32(8, length, true);
  return bytes;
}

export interface InterruptOptions {
  /** Edge-triggered (else level). */
  readonly edge: boolean;
  /** Active low (else active high). */
  readonly activeLow: boolean;
  /** Shared with other devices (else exclusive). */
  readonly shared: boolean;
}

/**
 * Interrupt(ResourceConsumer, Edge|Level, ActiveHigh|ActiveLow,
 * Exclusive|Shared) { gsi }: the Extended Interrupt descriptor (section
 * 6.4.3.6), one interrupt, no resource source.
 */
export function extendedInterrupt(gsi: number, options: InterruptOptions): Uint8Array {
  const bytes = new Uint8Array(9);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, Resource.ExtendedInterrupt);
  view.setUint16(1, 6, true); // flags, count, one u32
  const consumer = 0x01;
  view.setUint8(3, consumer | (options.edge ? 0x02 : 0) | (options.activeLow ? 0x04 : 0) | (options.shared ? 0x08 : 0));
  view.setUint8(4, 1); // interrupt count
  view.setUint32(5, gsi, true);
  return bytes;
}

/** IO(Decode16, base, base, 1, length): a fixed range of I/O ports (section 6.4.2.5). */
export function ioPorts(base: number, length: number): Uint8Array {
  const bytes = new Uint8Array(8);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, Resource.IoPort);
  view.setUint8(1, 1); // decodes all 16 address bits
  view.setUint16(2, base, true); // minimum base
  view.setUint16(4, base, true); // maximum base: the same, the range does not move
  view.setUint8(6, 1); // alignment
  view.setUint8(7, length);
  return bytes;
}
