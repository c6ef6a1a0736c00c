// Where the legacy devices sit on a PC's port I/O bus (the devices themselves
// only see offsets). These are the addresses Linux looks at without being
// told: arch/x86/include/asm/serial.h (COM1), the i8042 and CMOS defaults.
export const COM1 = { base: 0x3f8, size: 8, irq: 4 } as const;
/** Data port 0x60 (offset 0) and status/command port 0x64 (offset 4); the keyboard's IRQ 1. */
export const I8042_PORTS = { base: 0x60, size: 5, keyboardIrq: 1 } as const;
/** Index port 0x70 (offset 0) and data port 0x71 (offset 1). */
export const CMOS_PORTS = { base: 0x70, size: 2 } as const;
/**
 * tsvmm's ACPI power device (acpi-power.ts): sleep control at 0x600, sleep
 * status at 0x601, reset at 0x602. 0x600 is where Q35-class chipsets put
 * their ACPI PM block, a range no legacy PC device and no Linux probe uses
 * (the 0x3c0 some VMMs pick belongs to VGA, which a user's kernel may probe).
 */
export const ACPI_POWER_PORTS = { base: 0x600, size: 3 } as const;
