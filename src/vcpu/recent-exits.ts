// The last exits a vCPU took, kept for the report when its guest dies. A
// triple fault says nothing of its cause, and on AMD KVM has even reset the
// registers before tsvmm sees them (src/vcpu/vcpu-exit.ts); what the vCPU did
// just before (a run of console port writes, a device register, an
// interrupt) is then the only clue left. Recording costs a few stores into
// typed arrays per exit; nothing is formatted until a report asks.

import { hex } from '../hex.js';
import { ExitReason, exitReasonName } from '../kvm/exit-reasons.js';

/** How many exits a report lists: enough to show a pattern, short enough for one line. */
export const RECENT_EXITS_KEPT = 8;

/**
 * One exit in words: `KVM_EXIT_IO out port 0x3f8`, `KVM_EXIT_MMIO read
 * 0xd0000070`, or just the reason's name. `write` is the direction (port
 * out, MMIO write); `address` the port or guest-physical address.
 */
export function describeExitAccess(reason: number, write: boolean, address: number | bigint): string {
  if (reason === ExitReason.IO) return `${exitReasonName(reason)} ${write ? 'out' : 'in'} port ${hex(address)}`;
  if (reason === ExitReason.MMIO) return `${exitReasonName(reason)} ${write ? 'write' : 'read'} ${hex(address)}`;
  return exitReasonName(reason);
}

/** A ring of the last RECENT_EXITS_KEPT exits, and how many there were in all. */
export class RecentExits {
  private readonly reasons = new Int32Array(RECENT_EXITS_KEPT);
  private readonly writes = new Uint8Array(RECENT_EXITS_KEPT);
  /** Ports and MMIO addresses; guest-physical addresses fit a double exactly (below 2^53). */
  private readonly addresses = new Float64Array(RECENT_EXITS_KEPT);
  private total = 0;

  record(reason: number, write: boolean, address: number): void {
    const slot = this.total % RECENT_EXITS_KEPT;
    this.reasons[slot] = reason;
    this.writes[slot] = write ? 1 : 0;
    this.addresses[slot] = address;
    this.total++;
  }

  /**
   * `after 3 exits, the last (oldest first): KVM_EXIT_IO in port 0x3fd, ...`;
   * repeats in a row are counted (`... (x4)`) so that a loop reads as one.
   */
  describe(): string {
    if (this.total === 0) return 'before its first exit';
    const kept = Math.min(this.total, RECENT_EXITS_KEPT);
    const runs: { text: string; times: number }[] = [];
    for (let i = this.total - kept; i < this.total; i++) {
      const slot = i % RECENT_EXITS_KEPT;
      const text = describeExitAccess(this.reasons[slot]!, this.writes[slot] === 1, this.addresses[slot]!);
      const last = runs.at(-1);
      if (last?.text === text) last.times++;
      else runs.push({ text, times: 1 });
    }
    const listed = runs.map(({ text, times }) => (times > 1 ? `${text} (x${times})` : text)).join(', ');
    return `after ${this.total} exit${this.total === 1 ? '' : 's'}, the last (oldest first): ${listed}`;
  }
}
