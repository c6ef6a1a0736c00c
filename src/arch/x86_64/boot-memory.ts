// Everything the x86_64 64-bit boot protocol needs in guest memory, in one
// call and in the right order: the kernel first (its header decides the
// command-line limit and where the initramfs may go), then the command
// line, the initramfs, the ACPI tables, the zero page that points at all
// four, and the GDT, page tables and MP table the vCPUs start with. The
// vCPU registers come from registers.ts; nothing here touches KVM.
import type { GuestMemory } from '../../memory/guest-memory.js';
import { writeAcpiTables, type AcpiTables } from './acpi/tables.js';
import type { DsdtDevices } from './acpi/dsdt.js';
import { buildBootParams } from './boot-params.js';
import { maxCmdlineLength, writeCmdline } from './cmdline.js';
import { e820Map, type E820Entry } from './e820.js';
import { writeBootGdt } from './gdt.js';
import type { ImageSource } from './image-source.js';
import { loadInitramfs } from './initramfs.js';
import { loadKernelImage, type LoadedKernel } from './kernel-image.js';
import { ZERO_PAGE_START, lowRamEnd } from './layout.js';
import { writeMpTable } from './mptable.js';
import { writeIdentityPageTables } from './page-tables.js';
import { SYNTHETIC_INITRD_ADDR_MAX } from './setup-header.js';

export interface BootMemoryInput {
  /** The kernel file (ELF vmlinux or bzImage): only its headers and what is loaded are read. */
  readonly kernel: ImageSource;
  /** Shown in error messages, e.g. the kernel's path. */
  readonly kernelName?: string;
  /** The initramfs file, read whole into place. */
  readonly initramfs?: ImageSource;
  /** The final command line (see buildCmdline()). */
  readonly cmdline: string;
  /** Guest RAM size in bytes, as given to ramRegions(). */
  readonly ramSize: number;
  readonly cpuCount: number;
  /**
   * The devices to describe in ACPI tables (RSDP, XSDT, FADT, MADT, DSDT).
   * Omitted: no ACPI tables, and the kernel learns of the CPUs from the MP
   * table and of the devices from its command line only. Given, it must
   * list every virtio-mmio slot and the serial port: a kernel that uses ACPI
   * gets no interrupt for a device its DSDT does not name (see acpi/dsdt.ts).
   */
  readonly acpi?: DsdtDevices;
}

/** What writeBootMemory() placed in guest memory, and where (addresses are guest physical). */
export interface BootMemory {
  /** The kernel as loaded: its format, entry point and the range it occupies. */
  readonly kernel: LoadedKernel;
  /** The vCPUs' initial rip (also kernel.entry). */
  readonly entry: number;
  /** Where rsi must point. */
  readonly zeroPage: number;
  /** The kernel command line. */
  readonly cmdline: {
    /** Where it was written (NUL-terminated). */
    readonly address: number;
    /** The whole command line: the VMM's parameters and the user's. */
    readonly text: string;
  };
  /** The initramfs; undefined when the VM has none. */
  readonly initramfs?: {
    /** Where it was read to (page-aligned). */
    readonly address: number;
    /** Its length in bytes. */
    readonly size: number;
  };
  /** The memory map given to the kernel, as it prints it at boot ("BIOS-e820: ..."). */
  readonly e820: readonly E820Entry[];
  /** Where the ACPI tables went, when there are any. */
  readonly acpi?: AcpiTables;
}

export function writeBootMemory(memory: GuestMemory, input: BootMemoryInput): BootMemory {
  const kernel = loadKernelImage(memory, input.kernel, input.kernelName);
  const cmdlineAddress = writeCmdline(memory, input.cmdline, maxCmdlineLength(kernel.header));
  const initramfs = input.initramfs && loadInitramfs(memory, input.initramfs, {
    kernelEnd: kernel.kernelEnd,
    initrdAddrMax: kernel.header?.initrdAddrMax ?? SYNTHETIC_INITRD_ADDR_MAX,
    lowRamEnd: lowRamEnd(input.ramSize),
  });
  const e820 = e820Map(input.ramSize);
  const acpi = input.acpi && writeAcpiTables(memory, { ...input.acpi, cpuCount: input.cpuCount });
  memory.write(ZERO_PAGE_START, buildBootParams({
    setupHeader: kernel.setupHeader,
    cmdlineAddress,
    initramfs,
    e820,
    acpiRsdpAddress: acpi?.rsdpAddress,
  }));
  writeBootGdt(memory);
  writeIdentityPageTables(memory);
  writeMpTable(memory, input.cpuCount);
  return {
    kernel,
    entry: kernel.entry,
    zeroPage: ZERO_PAGE_START,
    cmdline: { address: cmdlineAddress, text: input.cmdline },
    ...(initramfs ? { initramfs } : {}),
    e820,
    ...(acpi ? { acpi } : {}),
  };
}
