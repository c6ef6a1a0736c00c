import { describe, expect, it } from 'vitest';
import { ExitReason, exitReasonName } from '../../../src/kvm/exit-reasons.js';
import { describeExit, errorExit } from '../../../src/vcpu/vcpu-exit.js';

describe('vCPU exit reports', () => {
  it('names exit reasons', () => {
    expect(exitReasonName(ExitReason.SHUTDOWN)).toBe('KVM_EXIT_SHUTDOWN');
    expect(exitReasonName(17)).toBe('KVM_EXIT_INTERNAL_ERROR');
    expect(exitReasonName(99)).toBe('KVM_EXIT_99');
  });

  it('describes a triple fault with the rip in hex', () => {
    expect(describeExit(0, ExitReason.SHUTDOWN, 0xffffffff81000000n, {})).toEqual({
      vcpuId: 0, kind: 'triple-fault', exitReason: 8, exitReasonName: 'KVM_EXIT_SHUTDOWN',
      rip: 0xffffffff81000000n, data: undefined,
      message: 'triple fault (KVM_EXIT_SHUTDOWN) at rip 0xffffffff81000000',
    });
  });

  it('adds the control registers, which say why the guest died', () => {
    const cpu = {
      rsp: 0x1ff8n, rflags: 0x10046n, cr0: 0x80050033n, cr2: 0xffffffff82a00000n, cr3: 0x1000n,
      cr4: 0x1020a0n, efer: 0xd01n, idtBase: 0n, idtLimit: 0xffff,
    };
    expect(describeExit(0, ExitReason.SHUTDOWN, 0x100000n, { cpu }).message).toBe(
      'triple fault (KVM_EXIT_SHUTDOWN) at rip 0x100000; rsp 0x1ff8, rflags 0x10046, cr0 0x80050033, '
      + 'cr2 0xffffffff82a00000, cr3 0x1000, cr4 0x1020a0, efer 0xd01, idt 0x0/0xffff',
    );
  });

  it('says so when KVM reset the vCPU before reporting its shutdown (AMD), instead of showing reset registers', () => {
    const resetState = {
      rsp: 0n, rflags: 0x2n, cr0: 0x60000010n, cr2: 0n, cr3: 0n, cr4: 0n, efer: 0n, idtBase: 0n, idtLimit: 0xffff,
    };
    expect(describeExit(0, ExitReason.SHUTDOWN, 0xfff0n, { cpu: resetState }).message).toBe(
      'triple fault (KVM_EXIT_SHUTDOWN) at rip 0xfff0; KVM reset the vCPU when it shut down (as on AMD), so its registers at the fault are lost',
    );
  });

  it('describes internal errors with their suberror', () => {
    const exit = describeExit(1, ExitReason.INTERNAL_ERROR, 0x1000n, { suberror: 1, data: [5n] });
    expect(exit.kind).toBe('internal-error');
    expect(exit.data).toEqual([5n]);
    expect(exit.message).toBe('KVM internal error: emulation failure (KVM_EXIT_INTERNAL_ERROR, suberror 1) at rip 0x1000');
  });

  it('describes system events, failed entries, halts and unknown exits', () => {
    expect(describeExit(0, ExitReason.SYSTEM_EVENT, undefined, { systemEventType: 2 })).toMatchObject({
      kind: 'system-event', systemEvent: 'reset', message: 'guest requested reset (KVM_EXIT_SYSTEM_EVENT)',
    });
    expect(describeExit(0, ExitReason.FAIL_ENTRY, 0x10n, { data: [0x21n] }).message)
      .toBe('KVM could not enter the guest (KVM_EXIT_FAIL_ENTRY, hardware entry failure reason 0x21) at rip 0x10');
    expect(describeExit(2, ExitReason.HLT, 0x8001n, {}).message).toBe('vCPU 2 halted (KVM_EXIT_HLT) at rip 0x8001');
    expect(describeExit(0, ExitReason.DEBUG, 0n, {})).toMatchObject({
      kind: 'unhandled', message: 'unhandled vCPU exit KVM_EXIT_DEBUG at rip 0x0',
    });
    expect(errorExit(3, 'KVM_RUN failed: EFAULT (Bad address)')).toEqual({
      vcpuId: 3, kind: 'error', exitReason: -1, exitReasonName: 'none', message: 'KVM_RUN failed: EFAULT (Bad address)',
    });
  });
});
