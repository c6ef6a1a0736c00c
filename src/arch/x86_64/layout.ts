// Every guest physical address tsvmm uses on x86_64, in one place, so that
// nothing overlaps by accident and a reader can see the whole map at once.
//
//   0x0000_0000  +-----------------------------------+
//                | real-mode IVT / BIOS data area    | left untouched (zero)
//   0x0000_0500  | boot GDT, IDT, TSS                |
//   0x0000_7000  | zero page (struct boot_params)    |
//   0x0000_8000  | boot stack (grows down)           |
//   0x0000_9000  | PML4, PDPT, 4 x PD (identity map) |
//   0x0002_0000  | kernel command line               |
//   0x0009_fc00  | MP table (reserved in the e820)   |
//   0x000e_0000  | ACPI: RSDP, XSDT, FADT, MADT, DSDT|
//   0x0010_0000  | bzImage protected-mode kernel     | (an ELF vmlinux loads at its own p_paddr)
//                | ... free RAM ...                  |
//                | initramfs, as high as possible    |
//                +-----------------------------------+ low RAM ends at min(RAM size, 3 GiB)
//   0xC000_0000  +-----------------------------------+
//                | 32-bit MMIO gap: virtio-mmio at   |
//                | 0xD000_0000, guest status device  |
//                | at 0xD100_0000, IOAPIC, LAPIC, TSS|
//   0x1_0000_0000+-----------------------------------+
//                | RAM beyond 3 GiB continues here   |
import type { MemoryRegion } from '../../memory/guest-memory.js';
import { MAX_CPUS, MIN_MEMORY_BYTES } from '../../config/types.js';
import { GiB, KiB, MiB } from '../../units.js';
import { BootConfigError } from './errors.js';

export const PAGE_SIZE = 0x1000;

// --- Low memory: the boot structures the VMM writes for the kernel ---------

/** Boot GDT (null, null, code 0x10, data 0x18, 16-byte TSS 0x20); see gdt.ts. */
export const BOOT_GDT_START = 0x500;
/** Boot IDT: empty, so a stray interrupt before Linux installs its own triple-faults visibly. */
export const BOOT_IDT_START = 0x540;
/** A zeroed 104-byte TSS for TR: KVM wants a usable TSS in long mode, Linux replaces it at once. */
export const BOOT_TSS_START = 0x580;
/** struct boot_params, the "zero page" (Documentation/arch/x86/zero-page.rst); rsi points here. */
export const ZERO_PAGE_START = 0x7000;
/** Initial rsp: top of the page below the page tables, 16-byte aligned (x86_64 ABI). */
export const BOOT_STACK_POINTER = 0x8ff0;
/** Page-map level 4 table: one entry, pointing at the PDPT. */
export const PML4_START = 0x9000;
/** Page-directory-pointer table: four entries, one per PD (4 GiB). */
export const PDPT_START = 0xa000;
/** Four page directories of 512 x 2 MiB pages each, back to back. */
export const PD_START = 0xb000;
/** How many page directories follow PD_START (each maps 1 GiB). */
export const PD_COUNT = 4;
/** Kernel command line, NUL-terminated (cmd_line_ptr in the setup header). */
export const CMDLINE_START = 0x20000;
/** Bytes reserved at CMDLINE_START, NUL included; the kernel's own limit (cmdline_size) is usually lower. */
export const CMDLINE_MAX_SIZE = 0x10000;
/**
 * Intel MP table: the floating pointer must sit in the last KiB of base
 * memory (639 KiB = 0x9fc00) for Linux to find it without a BIOS
 * (arch/x86/kernel/mpparse.c scans there); the config table follows it.
 */
export const MPTABLE_START = 0x9fc00;
/**
 * The BIOS data area's reset flag: before it restarts the machine, Linux
 * writes BIOS_WARM_RESET_FLAG here for a warm reboot and 0 for a cold one
 * (arch/x86/kernel/reboot.c). tsvmm reads it to tell a panic's reset from a
 * clean one (src/vm/guest-panic.ts).
 */
export const BIOS_RESET_FLAG_ADDRESS = 0x472;
export const BIOS_WARM_RESET_FLAG = 0x1234;
/** Start of high memory (1 MiB); [MPTABLE_START, HIMEM_START) is reported reserved, as on a PC. The bzImage's protected-mode part loads here (boot.rst). */
export const HIMEM_START = 0x100000;
/** Load address of a bzImage's protected-mode kernel; its 64-bit entry is +0x200. */
export const BZIMAGE_LOAD_ADDRESS = HIMEM_START;

// --- ACPI tables, in the BIOS area -----------------------------------------

/**
 * The ACPI Root System Description Pointer. Linux takes its address from
 * boot_params.acpi_rsdp_addr, and a kernel that does not (or a bootloader
 * that lost it) scans 0xE0000-0xFFFFF on 16-byte boundaries for
 * "RSD PTR " (ACPI 6.5 section 5.2.5.1; drivers/acpi/acpica/tbxfroot.c), so
 * the RSDP sits at the start of that area. The range is reserved in the e820
 * (it lies in [MPTABLE_START, HIMEM_START)), so the kernel never reuses it.
 */
export const ACPI_RSDP_START = 0xe_0000;
/** The XSDT, FADT, MADT and DSDT follow the RSDP, up to the end of the BIOS area. */
export const ACPI_TABLES_END = HIMEM_START;

// --- The 32-bit MMIO gap ----------------------------------------------------

/** Start of the hole below 4 GiB where devices live; RAM that would fall here moves above 4 GiB. */
export const MMIO_GAP_START = 0xc000_0000;
/** End (exclusive) of the MMIO gap: 4 GiB. */
export const MMIO_GAP_END = 0x1_0000_0000;
/** RAM beyond MMIO_GAP_START is placed from here. */
export const HIGH_RAM_START = MMIO_GAP_END;

/** First virtio-mmio device; each gets one 4 KiB window (virtio spec 4.2.2: registers fit in 0x100+config). */
export const VIRTIO_MMIO_START = 0xd000_0000;
export const VIRTIO_MMIO_DEVICE_SIZE = 0x1000;
/**
 * The guest status device (src/devices/guest-status.ts): a guest reports its
 * exit status and init's start here. One 4 KiB page above the virtio-mmio
 * windows; the guest learns the address from `tsvmm.status=` on its command
 * line, and reaches it from user space through /dev/mem (busybox devmem).
 */
export const GUEST_STATUS_START = 0xd100_0000;
export const GUEST_STATUS_SIZE = 0x1000;
/** First virtio-mmio IRQ; the next ones follow, up to the IOAPIC's last pin. */
export const VIRTIO_MMIO_FIRST_IRQ = 5;
/** The KVM in-kernel IOAPIC has 24 pins (GSI 0..23). */
export const IOAPIC_PIN_COUNT = 24;
/** How many virtio-mmio devices fit: IRQs 5..23. */
export const VIRTIO_MMIO_MAX_DEVICES = IOAPIC_PIN_COUNT - VIRTIO_MMIO_FIRST_IRQ;

/** Default IOAPIC base (KVM's in-kernel IOAPIC answers here). */
export const IOAPIC_START = 0xfec0_0000;
/** Default local APIC base (IA32_APIC_BASE reset value). */
export const LAPIC_START = 0xfee0_0000;
/**
 * KVM_SET_TSS_ADDR: three pages Intel VMX needs for real-mode emulation; they
 * must not overlap RAM or devices, so they sit high in the gap like on a PC.
 */
export const KVM_TSS_ADDRESS = 0xfffb_d000;
/** KVM_SET_IDENTITY_MAP_ADDR: one page, just below the TSS pages. */
export const KVM_IDENTITY_MAP_ADDRESS = 0xfffb_c000;

/** Where virtio-mmio device number `index` (0-based) lives and which IRQ it raises. */
export interface VirtioMmioSlot {
  readonly base: number;
  readonly size: number;
  readonly irq: number;
}

export function virtioMmioSlot(index: number): VirtioMmioSlot {
  if (!Number.isInteger(index) || index < 0 || index >= VIRTIO_MMIO_MAX_DEVICES) {
    throw new BootConfigError(
      `virtio-mmio device #${index} does not fit: at most ${VIRTIO_MMIO_MAX_DEVICES} devices (IRQs ` +
        `${VIRTIO_MMIO_FIRST_IRQ}..${IOAPIC_PIN_COUNT - 1}); remove some devices`);
  }
  return {
    base: VIRTIO_MMIO_START + index * VIRTIO_MMIO_DEVICE_SIZE,
    size: VIRTIO_MMIO_DEVICE_SIZE,
    irq: VIRTIO_MMIO_FIRST_IRQ + index,
  };
}

// --- Guest RAM --------------------------------------------------------------

/**
 * The guest RAM regions for `sizeBytes` of RAM: [0, min(size, gap start))
 * and, when RAM is larger than the gap start, the rest from 4 GiB. Host
 * offsets are contiguous, so one mmap of `sizeBytes` backs both.
 */
export function ramRegions(sizeBytes: number): MemoryRegion[] {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < MIN_MEMORY_BYTES || sizeBytes % PAGE_SIZE !== 0) {
    throw new BootConfigError(
      `guest RAM size ${sizeBytes} is invalid: it must be a multiple of 4 KiB and at least ` +
        `${MIN_MEMORY_BYTES / MiB} MiB (e.g. --memory size=512M)`);
  }
  const lowSize = Math.min(sizeBytes, MMIO_GAP_START);
  const regions: MemoryRegion[] = [{ guestAddress: 0, size: lowSize, hostOffset: 0 }];
  if (sizeBytes > lowSize) {
    regions.push({ guestAddress: HIGH_RAM_START, size: sizeBytes - lowSize, hostOffset: lowSize });
  }
  return regions;
}

/** End (exclusive) of RAM below the MMIO gap: the ceiling for the initramfs. */
export function lowRamEnd(sizeBytes: number): number {
  return Math.min(sizeBytes, MMIO_GAP_START);
}

/** Rounds `value` down / up to a multiple of `alignment` (a power of two or any positive integer). */
export function alignDown(value: number, alignment: number): number {
  return value - (value % alignment);
}
export function alignUp(value: number, alignment: number): number {
  return alignDown(value + alignment - 1, alignment);
}

/**
 * Checks a vCPU count against the VM's limit, MAX_CPUS (config/types.ts,
 * the guest kernel's NR_CPUS), for the boot structures that list the CPUs
 * (MP table, MADT, CPUID topology). Those could describe more, up to 254
 * (8-bit APIC ids, 0xff is the broadcast id, and the IOAPIC takes the id
 * after the last CPU's): the limit is one number, and it is the lower one.
 */
export function checkCpuCount(cpuCount: number): void {
  if (!Number.isInteger(cpuCount) || cpuCount < 1 || cpuCount > MAX_CPUS) {
    throw new BootConfigError(`cannot describe ${cpuCount} vCPUs: use --cpus boot=N with N between 1 and ${MAX_CPUS}`);
  }
}
