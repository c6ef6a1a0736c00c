// Telling a guest kernel panic from a clean reset, for any kernel a user
// brings, not only the default guest's.
//
// tsvmm asks for `panic=-1` (reboot at once instead of hanging) and
// `reboot=k,panic_warm`. The second makes the kernel's panic path, and only
// it, switch the reboot mode to "warm" before it restarts the machine
// (kernel/panic.c: panic_reboot_mode; kernel/reboot.c: the "panic_" prefix),
// and x86's restart code tells the BIOS which mode it chose by writing the
// warm-boot flag 0x1234 to physical address 0x472, or 0 for a cold reboot
// (arch/x86/kernel/reboot.c, native_machine_emergency_restart). So, when
// the guest resets, one look at that word in guest RAM says whether the
// kernel panicked, with no driver, no device and no console needed.
//
// Why not the alternatives: a pvpanic device needs a driver the user's
// kernel may lack (CONFIG_PVPANIC) and a way to find it (ACPI or a device
// tree); Hyper-V's crash MSRs are not for a KVM guest. The console is the
// fallback: kernels older than the "panic_" prefix, and a user's `panic=0`
// (the kernel halts instead of resetting), are caught by the panic's own
// messages on the serial port or virtio-console, which is also where the
// panic's reason is quoted from.
import { BIOS_RESET_FLAG_ADDRESS, BIOS_WARM_RESET_FLAG } from '../arch/x86_64/layout.js';
import type { GuestMemory } from '../memory/guest-memory.js';

/** What the kernel prints first: `Kernel panic - not syncing: <reason>` (kernel/panic.c). */
const PANIC_LINE = /Kernel panic - not syncing: (.*)$/;
/** What it prints last when it does not reset: `---[ end Kernel panic - not syncing: <reason> ]---`. */
const PANIC_END_LINE = /---\[ end Kernel panic - not syncing: (.*) \]---/;
/** Longer console lines are cut here: the watch must not grow with what a guest prints. */
const MAX_LINE_LENGTH = 1024;

/** True when the guest's last reset came from the kernel's panic path (see the top of this file). */
export function resetWasPanic(memory: GuestMemory): boolean {
  return memory.readU16(BIOS_RESET_FLAG_ADDRESS) === BIOS_WARM_RESET_FLAG;
}

/**
 * Reads the guest's console output line by line, remembers the reason of a
 * kernel panic, and reports a panic that ends in a halt (no reset follows).
 */
export class PanicWatch {
  private line = '';
  private panicReason: string | undefined;

  constructor(private readonly onPanicHalt: (reason: string) => void) {}

  /** The reason quoted by the last `Kernel panic - not syncing:` line seen, if any. */
  get reason(): string | undefined {
    return this.panicReason;
  }

  /** Feeds console output, as the guest wrote it. */
  feed(bytes: Uint8Array): void {
    for (const byte of bytes) {
      if (byte === 0x0a) {
        this.endLine();
      } else if (byte !== 0x0d && this.line.length < MAX_LINE_LENGTH) {
        this.line += String.fromCharCode(byte);
      }
    }
  }

  private endLine(): void {
    const line = this.line;
    this.line = '';
    const end = PANIC_END_LINE.exec(line);
    if (end) {
      this.panicReason = end[1]!.trim();
      this.onPanicHalt(this.panicReason);
      return;
    }
    const start = PANIC_LINE.exec(line);
    if (start) this.panicReason = start[1]!.trim();
  }
}
