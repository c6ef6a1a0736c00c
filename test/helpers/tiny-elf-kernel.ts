// The smallest ELF64 x86_64 executable tsvmm accepts as a kernel: its header
// and one PT_LOAD segment of 4 KiB at physical `address`, holding `code`
// (entered there, in 64-bit mode, with tsvmm's boot page tables) and bss.

/** The ELF64 header and one program header: `code` starts right after them in the file. */
const HEADERS_SIZE = 64 + 56;

export function tinyElfKernel(address: number, code: readonly number[] = []): Uint8Array {
  const image = new Uint8Array(HEADERS_SIZE + code.length);
  const view = new DataView(image.buffer);
  image.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]); // magic, ELFCLASS64, little-endian, version 1
  view.setUint16(16, 2, true); // e_type = ET_EXEC
  view.setUint16(18, 62, true); // e_machine = EM_X86_64
  view.setUint32(20, 1, true); // e_version
  view.setBigUint64(24, BigInt(address), true); // e_entry
  view.setBigUint64(32, 64n, true); // e_phoff
  view.setUint16(52, 64, true); // e_ehsize
  view.setUint16(54, 56, true); // e_phentsize
  view.setUint16(56, 1, true); // e_phnum
  view.setUint32(64, 1, true); // p_type = PT_LOAD
  view.setUint32(68, 7, true); // p_flags = RWX
  view.setBigUint64(64 + 8, BigInt(HEADERS_SIZE), true); // p_offset
  view.setBigUint64(64 + 16, BigInt(address), true); // p_vaddr
  view.setBigUint64(64 + 24, BigInt(address), true); // p_paddr
  view.setBigUint64(64 + 32, BigInt(code.length), true); // p_filesz
  view.setBigUint64(64 + 40, 0x1000n, true); // p_memsz
  image.set(code, HEADERS_SIZE);
  return image;
}
