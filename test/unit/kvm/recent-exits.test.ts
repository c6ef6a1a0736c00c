import { describe, expect, it } from 'vitest';
import { ExitReason } from '../../../src/kvm/exit-reasons.js';
import { RECENT_EXITS_KEPT, RecentExits, describeExitAccess } from '../../../src/vcpu/recent-exits.js';
import { describeExit } from '../../../src/vcpu/vcpu-exit.js';

const SERIAL_DATA = 0x3f8;
const SERIAL_LINE_STATUS = 0x3fd;

describe('the exits a vCPU took before its guest died', () => {
  it('names an exit by its access', () => {
    expect(describeExitAccess(ExitReason.IO, true, SERIAL_DATA)).toBe('KVM_EXIT_IO out port 0x3f8');
    expect(describeExitAccess(ExitReason.IO, false, SERIAL_LINE_STATUS)).toBe('KVM_EXIT_IO in port 0x3fd');
    expect(describeExitAccess(ExitReason.MMIO, false, 0xd0000070n)).toBe('KVM_EXIT_MMIO read 0xd0000070');
    expect(describeExitAccess(ExitReason.INTR, false, 0)).toBe('KVM_EXIT_INTR');
  });

  it('says when there was none', () => {
    expect(new RecentExits().describe()).toBe('before its first exit');
  });

  it('keeps only the last ones, oldest first, with the total', () => {
    const exits = new RecentExits();
    exits.record(ExitReason.MMIO, true, 0xd0000050); // pushed out by the ones after it
    for (let i = 0; i < RECENT_EXITS_KEPT / 2; i++) {
      exits.record(ExitReason.IO, false, SERIAL_LINE_STATUS);
      exits.record(ExitReason.IO, true, SERIAL_DATA);
    }
    const pair = 'KVM_EXIT_IO in port 0x3fd, KVM_EXIT_IO out port 0x3f8';
    expect(exits.describe()).toBe(
      `after ${RECENT_EXITS_KEPT + 1} exits, the last (oldest first): ${Array(RECENT_EXITS_KEPT / 2).fill(pair).join(', ')}`,
    );
  });

  it('counts repeats in a row, so that a polling loop reads as one entry', () => {
    const exits = new RecentExits();
    exits.record(ExitReason.MMIO, true, 0xd0000050);
    for (let i = 0; i < 5; i++) exits.record(ExitReason.IO, false, SERIAL_LINE_STATUS);
    exits.record(ExitReason.INTR, false, 0);
    expect(exits.describe()).toBe(
      'after 7 exits, the last (oldest first): KVM_EXIT_MMIO write 0xd0000050, KVM_EXIT_IO in port 0x3fd (x5), KVM_EXIT_INTR',
    );
  });

  it('ends a triple fault report', () => {
    const exits = new RecentExits();
    exits.record(ExitReason.IO, true, SERIAL_DATA);
    expect(describeExit(0, ExitReason.SHUTDOWN, 0xfff0n, { recentExits: exits.describe() }).message).toBe(
      'triple fault (KVM_EXIT_SHUTDOWN) at rip 0xfff0; after 1 exit, the last (oldest first): KVM_EXIT_IO out port 0x3f8',
    );
  });
});
