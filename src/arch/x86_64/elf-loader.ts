// Loads an uncompressed x86_64 Linux kernel (`vmlinux`, an ELF64 executable)
// into guest memory: each PT_LOAD segment's file bytes are read straight to
// its physical address (p_paddr) and its bss tail is zeroed; nothing else of
// the file (symbols, debug sections) is read. Field offsets follow the ELF-64
// Object File Format (elf(5)). The file is not trusted: every offset and
// address is checked before it is used.
import type { GuestMemory } from '../../memory/guest-memory.js';
import { hex } from '../../hex.js';
import { KernelImageError } from './errors.js';
import { readBytes, readHead, type ImageSource } from './image-source.js';
import { HIMEM_START } from './layout.js';

const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46]; // "\x7fELF"
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const ET_EXEC = 2;
const EM_X86_64 = 62;
const PT_LOAD = 1;
const ELF64_HEADER_SIZE = 64;
const ELF64_PHDR_SIZE = 56;

/** Where a kernel was put in guest memory. */
export interface LoadedElfKernel {
  /** Guest physical address of the 64-bit entry point (startup_64). */
  readonly entry: number;
  /** Lowest guest physical address the kernel occupies. */
  readonly kernelStart: number;
  /** First guest physical address after the kernel, bss included. */
  readonly kernelEnd: number;
}

interface ProgramHeader {
  readonly offset: bigint;
  readonly vaddr: bigint;
  readonly paddr: bigint;
  readonly filesz: bigint;
  readonly memsz: bigint;
}

/** True when `head` (a file's first bytes) starts with the ELF magic (any class or machine). */
export function isElf(head: Uint8Array): boolean {
  return head.byteLength >= 4 && ELF_MAGIC.every((b, i) => head[i] === b);
}

/** `head` is the file's first bytes (readHead()), when the caller has them already. */
export function loadElfKernel(memory: GuestMemory, source: ImageSource, head = readHead(source)): LoadedElfKernel {
  checkElfHeader(head, source.size);
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);

  const segments = readLoadSegments(source, head, view);
  if (segments.length === 0) throw new KernelImageError('ELF kernel has no PT_LOAD segment: nothing to load');

  // Every segment is checked before the first is read: a bad file fails fast.
  const placed = segments.map((segment) => ({ segment, ...checkSegmentPlacement(memory, segment) }));
  let kernelStart = Number.MAX_SAFE_INTEGER;
  let kernelEnd = 0;
  for (const { segment, start, end } of placed) {
    const fileSize = Number(segment.filesz);
    source.readInto(memory.slice(start, fileSize), Number(segment.offset));
    // p_memsz > p_filesz: the rest is .bss, which must read as zero.
    memory.fill(start + fileSize, end - start - fileSize, 0);
    kernelStart = Math.min(kernelStart, start);
    kernelEnd = Math.max(kernelEnd, end);
  }

  return { entry: physicalEntry(view.getBigUint64(24, true), segments), kernelStart, kernelEnd };
}

function checkElfHeader(head: Uint8Array, fileSize: number): void {
  if (!isElf(head)) throw new KernelImageError('not an ELF file (no \\x7fELF magic)');
  if (head.byteLength < ELF64_HEADER_SIZE) {
    throw new KernelImageError(`ELF file is truncated: ${fileSize} bytes, the ELF64 header alone is 64`);
  }
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (head[4] !== ELFCLASS64) throw new KernelImageError('ELF kernel is not 64-bit (EI_CLASS != ELFCLASS64): tsvmm boots x86_64 kernels only');
  if (head[5] !== ELFDATA2LSB) throw new KernelImageError('ELF kernel is not little-endian (EI_DATA != ELFDATA2LSB)');
  const type = view.getUint16(16, true);
  const machine = view.getUint16(18, true);
  if (machine !== EM_X86_64) {
    throw new KernelImageError(`ELF kernel is for machine ${machine}, not x86_64 (EM_X86_64 = 62): build the kernel for x86_64`);
  }
  if (type !== ET_EXEC) {
    throw new KernelImageError(`ELF file has type ${type}, not ET_EXEC (2): pass the kernel's vmlinux, not an object or module`);
  }
  const phentsize = view.getUint16(54, true);
  if (phentsize !== ELF64_PHDR_SIZE) {
    throw new KernelImageError(`ELF program header size is ${phentsize}, expected ${ELF64_PHDR_SIZE}: file is corrupt`);
  }
}

/** The PT_LOAD program headers, from the table at e_phoff (read from `head` when it holds it). */
function readLoadSegments(source: ImageSource, head: Uint8Array, header: DataView): ProgramHeader[] {
  const phoff = header.getBigUint64(32, true);
  const phnum = header.getUint16(56, true);
  const tableSize = phnum * ELF64_PHDR_SIZE;
  const tableEnd = phoff + BigInt(tableSize);
  if (tableEnd > BigInt(source.size)) {
    throw new KernelImageError(`ELF program headers [${hex(phoff)}, ${hex(tableEnd)}) run past the end of the file (${source.size} bytes): file is truncated`);
  }
  const table = readBytes(source, head, Number(phoff), tableSize);
  const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const segments: ProgramHeader[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = i * ELF64_PHDR_SIZE;
    if (view.getUint32(at, true) !== PT_LOAD) continue;
    const segment: ProgramHeader = {
      offset: view.getBigUint64(at + 8, true),
      vaddr: view.getBigUint64(at + 16, true),
      paddr: view.getBigUint64(at + 24, true),
      filesz: view.getBigUint64(at + 32, true),
      memsz: view.getBigUint64(at + 40, true),
    };
    if (segment.offset + segment.filesz > BigInt(source.size)) {
      throw new KernelImageError(`ELF segment ${i} (file bytes [${hex(segment.offset)}, ${hex(segment.offset + segment.filesz)})) runs past the end of the file (${source.size} bytes): file is truncated`);
    }
    if (segment.filesz > segment.memsz) {
      throw new KernelImageError(`ELF segment ${i} has p_filesz ${hex(segment.filesz)} > p_memsz ${hex(segment.memsz)}: file is corrupt`);
    }
    segments.push(segment);
  }
  return segments;
}

/** The segment's guest range, after checking it lies in RAM above the boot structures. */
function checkSegmentPlacement(memory: GuestMemory, segment: ProgramHeader): { start: number; end: number } {
  const range = `[${hex(segment.paddr)}, ${hex(segment.paddr + segment.memsz)})`;
  if (segment.paddr < BigInt(HIMEM_START)) {
    throw new KernelImageError(`ELF segment at ${range} lies below 1 MiB, where tsvmm keeps the zero page, page tables and command line`);
  }
  const start = Number(segment.paddr);
  const size = Number(segment.memsz);
  if (segment.paddr + segment.memsz > BigInt(Number.MAX_SAFE_INTEGER) || !memory.contains(start, size)) {
    throw new KernelImageError(`ELF segment at ${range} is outside guest RAM: give the VM more memory or check the kernel file`);
  }
  return { start, end: start + size };
}

/**
 * vmlinux's e_entry is already physical on x86_64: the linker script says
 * ENTRY(phys_startup_64) with phys_startup_64 = startup_64 - LOAD_OFFSET
 * (arch/x86/kernel/vmlinux.lds.S). Other linkers' kernels may give the
 * virtual address instead, so an entry inside a segment's virtual range is
 * translated through that segment; either way it must land in a segment.
 */
function physicalEntry(entry: bigint, segments: readonly ProgramHeader[]): number {
  const physical = segments.find((s) => entry >= s.paddr && entry < s.paddr + s.memsz);
  if (physical) return Number(entry);
  const virtual = segments.find((s) => entry >= s.vaddr && entry < s.vaddr + s.memsz);
  if (virtual) return Number(entry - virtual.vaddr + virtual.paddr);
  throw new KernelImageError(`ELF entry point ${hex(entry)} is in no loadable segment: file is corrupt`);
}
