// Every struct size and field offset, and every ioctl number, against the
// values a C program printed with sizeof/offsetof from <linux/kvm.h>
// (linux-libc-dev for 6.12, x86_64). Plus encode/decode round trips with
// exact bytes.

import { describe, expect, it } from 'vitest';
import { KVM } from '../../../src/kvm/ioctls.js';
import {
  CPUID2_HEADER_SIZE, CPUID_ENTRY_OFFSETS, CPUID_ENTRY_SIZE, FPU_OFFSETS, FPU_SIZE, LAPIC_STATE_SIZE,
  MSRS_HEADER_SIZE, MSR_ENTRY_OFFSETS, MSR_ENTRY_SIZE,
  decodeCpuid2, decodeFpu, decodeMsrs, defaultFpu, encodeCpuid2, encodeFpu, encodeMsrs,
} from '../../../src/kvm/structs/cpu-state.js';
import { KVM_RUN_OFFSETS, KVM_RUN_SIZE, KvmRun } from '../../../src/kvm/structs/kvm-run.js';
import {
  DTABLE_OFFSETS, DTABLE_SIZE, KvmSregs, REGS_SIZE, SEGMENT_OFFSETS, SEGMENT_SIZE, SREGS_OFFSETS, SREGS_SIZE,
  decodeRegs, decodeSregs, emptyRegs, encodeRegs, encodeSregs, regsOffset,
} from '../../../src/kvm/structs/registers.js';
import {
  IOEVENTFD_OFFSETS, IOEVENTFD_SIZE, IRQFD_OFFSETS, IRQFD_SIZE, IRQ_LEVEL_OFFSETS, IRQ_LEVEL_SIZE,
  KVM_IOEVENTFD_FLAG_DATAMATCH, KVM_IOEVENTFD_FLAG_PIO, PIT_CONFIG_OFFSETS, PIT_CONFIG_SIZE,
  USER_MEMORY_REGION_OFFSETS, USER_MEMORY_REGION_SIZE,
  encodeIoeventfd, encodeIrqLevel, encodeIrqfd, encodePitConfig, encodeUserMemoryRegion,
} from '../../../src/kvm/structs/vm-ioctl-structs.js';

describe('struct sizes and offsets match <linux/kvm.h>', () => {
  it('kvm_regs', () => {
    expect(REGS_SIZE).toBe(144);
    expect(['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp', 'r8', 'r15', 'rip', 'rflags']
      .map((r) => regsOffset(r as never))).toEqual([0, 8, 16, 24, 32, 40, 48, 56, 64, 120, 128, 136]);
  });

  it('kvm_segment and kvm_dtable', () => {
    expect(SEGMENT_SIZE).toBe(24);
    expect(SEGMENT_OFFSETS).toEqual({
      base: 0, limit: 8, selector: 12, type: 14, present: 15, dpl: 16, db: 17, s: 18, l: 19, g: 20, avl: 21, unusable: 22,
    });
    expect(DTABLE_SIZE).toBe(16);
    expect(DTABLE_OFFSETS).toEqual({ base: 0, limit: 8 });
  });

  it('kvm_sregs', () => {
    expect(SREGS_SIZE).toBe(312);
    expect(SREGS_OFFSETS).toEqual({
      cs: 0, ds: 24, es: 48, fs: 72, gs: 96, ss: 120, tr: 144, ldt: 168, gdt: 192, idt: 208,
      cr0: 224, cr2: 232, cr3: 240, cr4: 248, cr8: 256, efer: 264, apicBase: 272, interruptBitmap: 280,
    });
  });

  it('kvm_fpu', () => {
    expect(FPU_SIZE).toBe(416);
    expect(FPU_OFFSETS).toEqual({
      fpr: 0, fcw: 128, fsw: 130, ftwx: 132, lastOpcode: 134, lastIp: 136, lastDp: 144, xmm: 152, mxcsr: 408,
    });
  });

  it('kvm_msrs, kvm_msr_entry, kvm_cpuid2, kvm_cpuid_entry2, kvm_lapic_state', () => {
    expect([MSRS_HEADER_SIZE, MSR_ENTRY_SIZE]).toEqual([8, 16]);
    expect(MSR_ENTRY_OFFSETS).toEqual({ index: 0, data: 8 });
    expect([CPUID2_HEADER_SIZE, CPUID_ENTRY_SIZE]).toEqual([8, 40]);
    expect(CPUID_ENTRY_OFFSETS).toEqual({ function: 0, index: 4, flags: 8, eax: 12, ebx: 16, ecx: 20, edx: 24 });
    expect(LAPIC_STATE_SIZE).toBe(1024);
  });

  it('kvm_userspace_memory_region, kvm_irqfd, kvm_ioeventfd, kvm_irq_level, kvm_pit_config', () => {
    expect(USER_MEMORY_REGION_SIZE).toBe(32);
    expect(USER_MEMORY_REGION_OFFSETS).toEqual({ slot: 0, flags: 4, guestPhysAddr: 8, memorySize: 16, userspaceAddr: 24 });
    expect(IRQFD_SIZE).toBe(32);
    expect(IRQFD_OFFSETS).toEqual({ fd: 0, gsi: 4, flags: 8, resamplefd: 12 });
    expect(IOEVENTFD_SIZE).toBe(64);
    expect(IOEVENTFD_OFFSETS).toEqual({ datamatch: 0, addr: 8, len: 16, fd: 20, flags: 24 });
    expect(IRQ_LEVEL_SIZE).toBe(8);
    expect(IRQ_LEVEL_OFFSETS).toEqual({ irq: 0, level: 4 });
    expect(PIT_CONFIG_SIZE).toBe(64);
    expect(PIT_CONFIG_OFFSETS).toEqual({ flags: 0 });
  });

  it('kvm_run', () => {
    expect(KVM_RUN_SIZE).toBe(2352);
    expect(KVM_RUN_OFFSETS).toEqual({
      requestInterruptWindow: 0, immediateExit: 1, exitReason: 8, readyForInterruptInjection: 12, ifFlag: 13,
      flags: 14, cr8: 16, apicBase: 24, exitUnion: 32,
      io: { direction: 32, size: 33, port: 34, count: 36, dataOffset: 40 },
      mmio: { physAddr: 32, data: 40, len: 48, isWrite: 52 },
      failEntry: { hardwareEntryFailureReason: 32, cpu: 40 },
      internal: { suberror: 32, ndata: 36, data: 40 },
      systemEvent: { type: 32, ndata: 36, data: 40 },
      kvmValidRegs: 288, kvmDirtyRegs: 296, syncRegs: 304,
    });
  });
});

describe('ioctl numbers match <linux/kvm.h>', () => {
  it('has the values the C macros produce', () => {
    expect(KVM).toEqual({
      GET_API_VERSION: 0xae00, CREATE_VM: 0xae01, GET_MSR_INDEX_LIST: 0xc004ae02, CHECK_EXTENSION: 0xae03,
      GET_VCPU_MMAP_SIZE: 0xae04, GET_SUPPORTED_CPUID: 0xc008ae05,
      CREATE_VCPU: 0xae41, SET_USER_MEMORY_REGION: 0x4020ae46, SET_TSS_ADDR: 0xae47, SET_IDENTITY_MAP_ADDR: 0x4008ae48,
      CREATE_IRQCHIP: 0xae60, IRQ_LINE: 0x4008ae61, IRQFD: 0x4020ae76, CREATE_PIT2: 0x4040ae77, IOEVENTFD: 0x4040ae79,
      RUN: 0xae80, GET_REGS: 0x8090ae81, SET_REGS: 0x4090ae82, GET_SREGS: 0x8138ae83, SET_SREGS: 0x4138ae84,
      GET_MSRS: 0xc008ae88, SET_MSRS: 0x4008ae89, GET_FPU: 0x81a0ae8c, SET_FPU: 0x41a0ae8d,
      GET_LAPIC: 0x8400ae8e, SET_LAPIC: 0x4400ae8f, SET_CPUID2: 0x4008ae90, GET_CPUID2: 0xc008ae91,
    });
  });
});

describe('encoders and decoders', () => {
  it('kvm_regs: rip at 128, rflags at 136, round trip', () => {
    const regs = { ...emptyRegs(), rax: 0x0102030405060708n, rip: 0xffffffff81000000n, rflags: 2n };
    const bytes = encodeRegs(regs);
    expect([...bytes.subarray(0, 8)]).toEqual([8, 7, 6, 5, 4, 3, 2, 1]);
    expect([...bytes.subarray(128, 136)]).toEqual([0, 0, 0, 0x81, 0xff, 0xff, 0xff, 0xff]);
    expect(bytes[136]).toBe(2);
    expect(decodeRegs(bytes)).toEqual(regs);
  });

  it('kvm_sregs: segment fields and control registers land at their offsets', () => {
    const segment = { base: 0x1000n, limit: 0xfffff, selector: 0x10, type: 3, present: 1, dpl: 3, db: 1, s: 1, l: 0, g: 1, avl: 0, unusable: 0 };
    const sregs: KvmSregs = {
      cs: { ...segment, selector: 8, type: 0xb, l: 1, db: 0 }, ds: segment, es: segment, fs: segment, gs: segment, ss: segment,
      tr: { ...segment, s: 0, type: 0xb }, ldt: { ...segment, unusable: 1 },
      gdt: { base: 0x500n, limit: 0x17 }, idt: { base: 0n, limit: 0 },
      cr0: 0x80000011n, cr2: 0n, cr3: 0x1000n, cr4: 0x20n, cr8: 0n, efer: 0x500n, apicBase: 0xfee00900n,
      interruptBitmap: [1n, 0n, 0n, 1n << 63n],
    };
    const bytes = encodeSregs(sregs);
    const ds = SREGS_OFFSETS.ds;
    expect([...bytes.subarray(ds, ds + 24)]).toEqual([
      0x00, 0x10, 0, 0, 0, 0, 0, 0, // base
      0xff, 0xff, 0x0f, 0x00, //       limit
      0x10, 0x00, //                   selector
      3, 1, 3, 1, 1, 0, 1, 0, 0, 0, // type present dpl db s l g avl unusable padding
    ]);
    expect([...bytes.subarray(SREGS_OFFSETS.gdt, SREGS_OFFSETS.gdt + 10)]).toEqual([0, 5, 0, 0, 0, 0, 0, 0, 0x17, 0]);
    expect(new DataView(bytes.buffer).getBigUint64(SREGS_OFFSETS.efer, true)).toBe(0x500n);
    expect(bytes[SREGS_OFFSETS.interruptBitmap]).toBe(1);
    expect(bytes[SREGS_OFFSETS.interruptBitmap + 31]).toBe(0x80);
    expect(decodeSregs(bytes)).toEqual(sregs);
  });

  it('kvm_fpu round trip', () => {
    const fpu = { ...defaultFpu(), fsw: 0x1234, ftwx: 0xff, lastOpcode: 0x7ff, lastIp: 5n, lastDp: 6n };
    fpu.fpr[127] = 9;
    fpu.xmm[3] = 0x42;
    const bytes = encodeFpu(fpu);
    expect([bytes[128], bytes[129]]).toEqual([0x7f, 0x03]); // fcw 0x37f
    expect([bytes[408], bytes[409]]).toEqual([0x80, 0x1f]); // mxcsr 0x1f80
    expect(bytes[152 + 3]).toBe(0x42);
    expect(decodeFpu(bytes)).toEqual(fpu);
  });

  it('kvm_msrs: header count, then index and data per entry', () => {
    const bytes = encodeMsrs([{ index: 0x174, data: 0x10n }, { index: 0xc0000080, data: 0x500n }]);
    expect(bytes.byteLength).toBe(8 + 2 * 16);
    expect([...bytes.subarray(0, 8)]).toEqual([2, 0, 0, 0, 0, 0, 0, 0]);
    expect([...bytes.subarray(8, 24)]).toEqual([0x74, 1, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0]);
    expect([...bytes.subarray(24, 28)]).toEqual([0x80, 0, 0, 0xc0]);
    expect(decodeMsrs(bytes)).toEqual([{ index: 0x174, data: 0x10n }, { index: 0xc0000080, data: 0x500n }]);
  });

  it('kvm_cpuid2: nent is the capacity, entries are 40 bytes', () => {
    const entry = { function: 0x80000001, index: 0, flags: 1, eax: 1, ebx: 2, ecx: 3, edx: 0xffffffff };
    const bytes = encodeCpuid2([entry], 3);
    expect(bytes.byteLength).toBe(8 + 3 * 40);
    expect(bytes[0]).toBe(3);
    expect([...bytes.subarray(8, 12)]).toEqual([1, 0, 0, 0x80]);
    expect([...bytes.subarray(8 + 24, 8 + 28)]).toEqual([0xff, 0xff, 0xff, 0xff]);
    expect(decodeCpuid2(bytes)[0]).toEqual(entry);
  });

  it('VM configuration structs', () => {
    const region = encodeUserMemoryRegion({ slot: 1, guestPhysAddr: 0x100000000n, memorySize: 0x40000000n, userspaceAddr: 0x7f0000001000n });
    expect([...region]).toEqual([
      1, 0, 0, 0, 0, 0, 0, 0,
      0, 0, 0, 0, 1, 0, 0, 0,
      0, 0, 0, 0x40, 0, 0, 0, 0,
      0, 0x10, 0, 0, 0, 0x7f, 0, 0,
    ]);
    expect([...encodeIrqfd({ fd: 9, gsi: 5 }).subarray(0, 16)]).toEqual([9, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const ioeventfd = encodeIoeventfd({
      address: 0xd0000050n, length: 4, fd: 7, flags: KVM_IOEVENTFD_FLAG_DATAMATCH | KVM_IOEVENTFD_FLAG_PIO, datamatch: 3n,
    });
    expect([...ioeventfd.subarray(0, 28)]).toEqual([
      3, 0, 0, 0, 0, 0, 0, 0, 0x50, 0, 0, 0xd0, 0, 0, 0, 0, 4, 0, 0, 0, 7, 0, 0, 0, 3, 0, 0, 0,
    ]);
    expect([...encodeIrqLevel(4, 1)]).toEqual([4, 0, 0, 0, 1, 0, 0, 0]);
    expect([...encodePitConfig(1).subarray(0, 4)]).toEqual([1, 0, 0, 0]);
  });

  it('KvmRun reads the exit fields from their offsets', () => {
    const page = new Uint8Array(8192);
    const view = new DataView(page.buffer);
    const run = new KvmRun(page);
    view.setUint32(8, 2, true); // KVM_EXIT_IO
    page[32] = 1; // out
    page[33] = 2; // 2 bytes
    view.setUint16(34, 0x3f8, true);
    view.setUint32(36, 2, true); // count
    view.setBigUint64(40, 4096n, true);
    page.set([1, 2, 3, 4], 4096);
    expect([run.exitReason, run.ioDirection, run.ioSize, run.ioPort, run.ioCount]).toEqual([2, 1, 2, 0x3f8, 2]);
    expect([...run.ioData()]).toEqual([1, 2, 3, 4]);

    view.setBigUint64(32, 0xd0000000n, true);
    page.set([9, 8, 7, 6, 5, 4, 3, 2], 40);
    view.setUint32(48, 2, true);
    page[52] = 1;
    expect([run.mmioAddress, run.mmioLength, run.mmioIsWrite]).toEqual([0xd0000000n, 2, true]);
    expect([...run.mmioData()]).toEqual([9, 8]);

    view.setUint32(32, 1, true); // internal error suberror 1 / system event type 1
    view.setUint32(36, 2, true);
    view.setBigUint64(40, 0xaan, true);
    view.setBigUint64(48, 0xbbn, true);
    expect([run.internalSuberror, run.internalData()]).toEqual([1, [0xaan, 0xbbn]]);
    expect([run.systemEventType, run.systemEventData()]).toEqual([1, [0xaan, 0xbbn]]);

    run.immediateExit = true;
    expect(page[1]).toBe(1);
  });
});
