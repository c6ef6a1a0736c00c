import { describe, expect, it } from 'vitest';
import { bootRegisters, bootSpecialRegisters } from '../../../src/arch/x86_64/registers.js';
import { bootMsrs } from '../../../src/arch/x86_64/msrs.js';
import { defaultFpu } from '../../../src/kvm/structs/cpu-state.js';
import { setLapicLocalInterrupts } from '../../../src/arch/x86_64/lapic.js';

describe('bootRegisters', () => {
  it('enters at the entry point with rsi on the zero page', () => {
    const regs = bootRegisters(0x1000000);
    expect(regs).toEqual({
      rax: 0n, rbx: 0n, rcx: 0n, rdx: 0n, rsi: 0x7000n, rdi: 0n, rsp: 0x8ff0n, rbp: 0n,
      r8: 0n, r9: 0n, r10: 0n, r11: 0n, r12: 0n, r13: 0n, r14: 0n, r15: 0n,
      rip: 0x1000000n, rflags: 2n,
    });
  });
});

describe('bootSpecialRegisters', () => {
  const sregs = bootSpecialRegisters();

  it('starts in long mode with paging on the identity map', () => {
    expect(sregs.cr0).toBe(0x8000_0011n);
    expect(sregs.cr3).toBe(0x9000n);
    expect(sregs.cr4).toBe(0x20n);
    expect(sregs.efer).toBe(0x500n);
  });

  it('loads __BOOT_CS and __BOOT_DS', () => {
    expect(sregs.cs).toEqual({ base: 0n, limit: 0xffffffff, selector: 0x10, type: 11, present: 1, dpl: 0, db: 0, s: 1, l: 1, g: 1, avl: 0, unusable: 0 });
    for (const seg of [sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss]) {
      expect(seg).toEqual({ base: 0n, limit: 0xffffffff, selector: 0x18, type: 3, present: 1, dpl: 0, db: 1, s: 1, l: 0, g: 1, avl: 0, unusable: 0 });
    }
    expect(sregs.tr).toMatchObject({ selector: 0x20, type: 11, base: 0x580n, limit: 0x67, present: 1, s: 0, unusable: 0 });
    expect(sregs.ldt).toMatchObject({ present: 0, unusable: 1 });
    expect(sregs.gdt).toEqual({ base: 0x500n, limit: 47 });
    expect(sregs.idt).toEqual({ base: 0x540n, limit: 0 });
  });

  it('returns fresh objects each time', () => {
    const a = bootSpecialRegisters();
    a.ds.base = 5n;
    expect(a.es.base).toBe(0n);
    expect(bootSpecialRegisters().ds.base).toBe(0n);
  });
});

describe('bootMsrs and FPU', () => {
  it('lists the boot MSRs', () => {
    const msrs = new Map(bootMsrs().map((m) => [m.index, m.data]));
    expect(msrs.size).toBe(11);
    for (const index of [0x174, 0x175, 0x176, 0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084, 0xc0000102, 0x10]) {
      expect(msrs.get(index)).toBe(0n);
    }
    expect(msrs.get(0x1a0)).toBe(1n); // fast strings
    expect(msrs.get(0x2ff)).toBe(0x806n); // MTRRs on, default write-back
  });

  it('starts the FPU with the reset control words and the rest zero', () => {
    const fpu = defaultFpu();
    expect(fpu).toMatchObject({ fcw: 0x37f, mxcsr: 0x1f80, fsw: 0, ftwx: 0 });
    expect([...fpu.fpr, ...fpu.xmm].every((byte) => byte === 0)).toBe(true);
    expect(fpu.fpr).not.toBe(defaultFpu().fpr);
  });
});

describe('setLapicLocalInterrupts', () => {
  it('sets only the delivery mode of LINT0 (ExtINT) and LINT1 (NMI)', () => {
    const state = new Uint8Array(1024);
    const view = new DataView(state.buffer);
    view.setUint32(0x350, 0x0001_0000, true); // masked, fixed
    view.setUint32(0x360, 0x0001_0400, true); // masked, SMI
    view.setUint32(0x340, 0xdead_beef, true); // neighbour untouched
    expect(setLapicLocalInterrupts(state)).toBe(state);
    expect(view.getUint32(0x350, true)).toBe(0x0001_0700);
    expect(view.getUint32(0x360, true)).toBe(0x0001_0400);
    expect(view.getUint32(0x340, true)).toBe(0xdead_beef);
    view.setUint32(0x360, 0x700, true);
    setLapicLocalInterrupts(state);
    expect(view.getUint32(0x360, true)).toBe(0x400);
  });

  it('rejects a buffer of the wrong size', () => {
    expect(() => setLapicLocalInterrupts(new Uint8Array(4096))).toThrow(/1024 bytes/);
  });
});
