// The pieces that turn the guest's verdict into tsvmm's exit status: the
// guest status device's registers, the panic watch on the console, the
// reset flag in guest RAM, and the exit statuses themselves.
import { describe, expect, it, vi } from 'vitest';
import { BIOS_RESET_FLAG_ADDRESS, BIOS_WARM_RESET_FLAG } from '../../../src/arch/x86_64/layout.js';
import {
  GUEST_STATUS_IDENTITY, GuestStatusDevice, GuestStatusRegister, guestStatusParameter,
} from '../../../src/devices/guest-status.js';
import { GuestMemory } from '../../../src/memory/guest-memory.js';
import { PanicWatch, resetWasPanic } from '../../../src/vm/guest-panic.js';
import type { VcpuExit } from '../../../src/vcpu/vcpu-exit.js';
import {
  EXIT_GUEST_PANIC, EXIT_TIMEOUT, guestEnded, guestEndedVerdict, guestPanicked, guestReportedExit, timedOut,
  vcpuStoppedVerdict, type GuestEvidence,
} from '../../../src/vm/vm-exit.js';

const byte = (value: number) => Uint8Array.of(value);

describe('guest status device', () => {
  function device() {
    const events = { onExit: vi.fn(), onInitStarted: vi.fn() };
    return { events, status: new GuestStatusDevice(events) };
  }

  it('EXIT ends the VM with the low byte of what was written', () => {
    const { events, status } = device();
    status.write(GuestStatusRegister.EXIT, Uint8Array.of(0x2a, 0x01, 0, 0)); // a 32-bit write of 0x12a
    expect(events.onExit).toHaveBeenCalledExactlyOnceWith(0x2a);
    expect(status.reportedStatus).toBe(0x2a);
  });

  it('STATUS only remembers; INIT_STARTED signals; other offsets are ignored', () => {
    const { events, status } = device();
    expect(status.reportedStatus).toBeUndefined();
    status.write(GuestStatusRegister.STATUS, byte(7));
    status.write(GuestStatusRegister.STATUS, byte(9));
    status.write(0x40, byte(1));
    expect(status.reportedStatus).toBe(9);
    expect(events.onExit).not.toHaveBeenCalled();
    status.write(GuestStatusRegister.INIT_STARTED, byte(1));
    expect(events.onInitStarted).toHaveBeenCalledOnce();
  });

  it('reads "TSVM" at IDENTITY, at any width, and zero elsewhere', () => {
    const { status } = device();
    const word = new Uint8Array(4);
    status.read(GuestStatusRegister.IDENTITY, word);
    expect(new TextDecoder().decode(word)).toBe('TSVM');
    expect(new DataView(word.buffer).getUint32(0, true)).toBe(GUEST_STATUS_IDENTITY);
    const first = new Uint8Array(1);
    status.read(GuestStatusRegister.IDENTITY, first);
    expect(first[0]).toBe('T'.charCodeAt(0));
    const other = Uint8Array.of(0xff, 0xff);
    status.read(GuestStatusRegister.EXIT, other);
    expect([...other]).toEqual([0, 0]);
  });

  it('announces itself as tsvmm.status=0x<address>', () => {
    expect(guestStatusParameter(0xd100_0000)).toBe('tsvmm.status=0xd1000000');
  });
});

describe('panic watch on the console', () => {
  const text = (s: string) => new TextEncoder().encode(s);

  it('remembers the reason of a "Kernel panic - not syncing:" line, fed in any pieces', () => {
    const onHalt = vi.fn();
    const watch = new PanicWatch(onHalt);
    const line = '[    0.912345] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\r\n';
    for (const ch of line) watch.feed(text(ch));
    expect(watch.reason).toBe('VFS: Unable to mount root fs on unknown-block(0,0)');
    expect(onHalt).not.toHaveBeenCalled();
  });

  it('reports the end-of-panic line (the kernel halts instead of resetting)', () => {
    const onHalt = vi.fn();
    const watch = new PanicWatch(onHalt);
    watch.feed(text('Kernel panic - not syncing: Attempted to kill init!\n---[ end Kernel panic - not syncing: Attempted to kill init! ]---\n'));
    expect(onHalt).toHaveBeenCalledExactlyOnceWith('Attempted to kill init!');
  });

  it('ignores ordinary output, and a line does not grow without bound', () => {
    const watch = new PanicWatch(() => {});
    watch.feed(text('hello\nKernel panic? no\n'));
    watch.feed(new Uint8Array(1 << 20).fill(0x41));
    watch.feed(text(' Kernel panic - not syncing: too late\n')); // beyond the cut of a 1 MiB line
    expect(watch.reason).toBeUndefined();
  });
});

describe('the reset flag in guest RAM', () => {
  it('0x1234 at 0x472 (warm reboot, set only by the panic path) means panic; 0 means a clean reset', () => {
    const memory = new GuestMemory(new Uint8Array(0x1000), [{ guestAddress: 0, size: 0x1000, hostOffset: 0 }]);
    expect(resetWasPanic(memory)).toBe(false);
    memory.writeU16(BIOS_RESET_FLAG_ADDRESS, BIOS_WARM_RESET_FLAG);
    expect(resetWasPanic(memory)).toBe(true);
  });
});

describe('exit statuses', () => {
  it('each way a VM ends has its own status and line', () => {
    expect(guestReportedExit(3)).toEqual({ reason: 'guest-status', status: 3 });
    expect(guestEnded('reset', undefined)).toEqual({ reason: 'reset', status: 0 });
    expect(guestEnded('poweroff', 5)).toEqual({ reason: 'poweroff', status: 5 });
    expect(guestPanicked('oops')).toEqual({ reason: 'panic', status: EXIT_GUEST_PANIC, message: 'guest kernel panicked: "oops"' });
    expect(timedOut(15)).toEqual({ reason: 'timeout', status: EXIT_TIMEOUT, message: 'timed out after 15 s: the VM was stopped' });
  });
});

describe('the verdict when a vCPU stops for good', () => {
  const tripleFault: VcpuExit = {
    vcpuId: 0, kind: 'triple-fault', exitReason: 8, exitReasonName: 'KVM_EXIT_SHUTDOWN', rip: 0xfff0n,
    message: 'triple fault (KVM_EXIT_SHUTDOWN) at rip 0xfff0',
  };
  const reset: VcpuExit = { ...tripleFault, kind: 'system-event', exitReason: 24, systemEvent: 'reset', message: 'reset' };
  const calm: GuestEvidence = { kernelPanicked: false, panicReason: undefined, reportedStatus: undefined };

  it('a triple fault after a panic is the panic (Linux fell back to the reset vector before its reset request landed)', () => {
    const panicked = { ...calm, kernelPanicked: true, panicReason: 'Too many boot init vars at `w31\'' };
    expect(vcpuStoppedVerdict(tripleFault, panicked)).toEqual(guestPanicked(panicked.panicReason));
    expect(vcpuStoppedVerdict(tripleFault, { ...calm, kernelPanicked: true })).toMatchObject({ reason: 'panic', status: EXIT_GUEST_PANIC });
  });

  it('a triple fault without a panic is a guest that died; a reset is the reported status, or the panic', () => {
    expect(vcpuStoppedVerdict(tripleFault, calm)).toMatchObject({ reason: 'guest-died', status: 1 });
    expect(vcpuStoppedVerdict(reset, { ...calm, reportedStatus: 6 })).toEqual(guestEnded('reset', 6));
    expect(vcpuStoppedVerdict(reset, { ...calm, kernelPanicked: true })).toMatchObject({ reason: 'panic' });
    expect(guestEndedVerdict('poweroff', { ...calm, kernelPanicked: true })).toEqual(guestEnded('poweroff', undefined));
  });
});
