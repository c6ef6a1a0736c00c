// The x86_64 boot pieces a VM assembler needs, in the order it uses them:
// guest RAM layout, guest memory contents (writeBootMemory does all of it),
// then the per-vCPU state handed to KVM.
export * from './errors.js';
export * from './layout.js';
export { buildCmdline, DEFAULT_KERNEL_PARAMS, virtioMmioParam, maxCmdlineLength, type VmmKernelParams } from './cmdline.js';
export { e820Map, formatE820, E820_RAM, E820_RESERVED, type E820Entry } from './e820.js';
export { loadKernelImage, type LoadedKernel } from './kernel-image.js';
export type { ImageSource } from './image-source.js';
export { writeBootMemory, type BootMemory, type BootMemoryInput } from './boot-memory.js';
export { bootRegisters, bootSpecialRegisters, type BootSregs } from './registers.js';
export { bootMsrs } from './msrs.js';
export { setLapicLocalInterrupts } from './lapic.js';
export { patchCpuid, type CpuidEntry, type CpuidOptions } from './cpuid.js';
export { buildMpTable, writeMpTable } from './mptable.js';
export { writeAcpiTables, type AcpiPlatform, type AcpiTables, type PlacedAcpiTable } from './acpi/tables.js';
export type { DsdtDevices } from './acpi/dsdt.js';
