// The vCPU worker on this machine's /dev/kvm, with tiny hand-assembled
// 64-bit guests (bytes below, with their assembly). Each test checks what
// the devices saw and what the guest got back.

import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { Bus } from '../../src/bus/bus.js';
import { PrestartedVcpuWorkers } from '../../src/vcpu/prestarted-workers.js';
import { VcpuExit } from '../../src/vcpu/vcpu-exit.js';
import { VcpuSet, VcpuSetOptions } from '../../src/vcpu/vcpu-set.js';
import { VcpuThread, VcpuThreadOptions } from '../../src/vcpu/vcpu-thread.js';
import { RecordingDevice } from './recording-device.js';
import {
  CODE_ADDRESS, DATA_ADDRESS, MMIO_ADDRESS, TinyGuest, createTinyGuest, hasKvm, openFdCount,
} from './tiny-guest.js';

const UART = 0x3f8;

interface Harness {
  guest: TinyGuest;
  set: VcpuSet;
  /** threads[0]. */
  thread: VcpuThread;
  threads: VcpuThread[];
  uart: RecordingDevice;
  mmio: RecordingDevice;
  exits: VcpuExit[];
}

type HarnessOptions = Omit<Partial<VcpuThreadOptions>, 'vcpu'>
  & Pick<VcpuSetOptions, 'onUnclaimedAccess'> & { irqchip?: boolean; vcpuCount?: number };

let open: Harness[] = [];

/**
 * Guest `code` on `vcpuCount` vCPUs (1 by default), with a RecordingDevice
 * on ports 0x3f8-0x3ff and on 4 KiB of MMIO. Not started: call start().
 */
function create(code: number[], options: HarnessOptions = {}): Harness {
  const { irqchip, vcpuCount, onUnclaimedAccess, ...threadOptions } = options;
  const guest = createTinyGuest(code, { irqchip, vcpuCount });
  const uart = new RecordingDevice();
  const mmio = new RecordingDevice();
  const pioBus = new Bus('pio', 'pio');
  const mmioBus = new Bus('mmio', 'mmio');
  pioBus.register(UART, 8, uart, 'recording uart');
  mmioBus.register(MMIO_ADDRESS, 0x1000, mmio, 'recording mmio');
  const exits: VcpuExit[] = [];
  const set = new VcpuSet({ buses: { pio: pioBus, mmio: mmioBus }, onUnclaimedAccess });
  const threads = guest.vcpus.map((vcpu) => set.add({ vcpu, onExit: (exit) => exits.push(exit), ...threadOptions }));
  const harness = { guest, set, thread: threads[0]!, threads, uart, mmio, exits };
  open.push(harness);
  return harness;
}

/** create(), then start every vCPU. */
function start(code: number[], options: HarnessOptions = {}): Harness {
  const harness = create(code, options);
  for (const thread of harness.threads) thread.start();
  return harness;
}

afterEach(async () => {
  for (const h of open) {
    await h.set.stopAll();
    h.guest.close();
  }
  open = [];
});

/** Blocks the main thread (so it cannot answer the worker) until `condition` or 10 s. */
function blockUntil(condition: () => boolean): void {
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 10_000 && !condition(); i++) Atomics.wait(sleeper, 0, 0, 1);
}

describe.skipIf(!hasKvm)('vCPU thread on /dev/kvm', () => {
  it('decodes port writes of 1, 2 and 4 bytes and delivers them in order', async () => {
    const h = start([
      0x66, 0xba, 0xf8, 0x03, //       mov dx, 0x3f8
      0xb0, 0x48, //                   mov al, 'H'
      0xee, //                         out dx, al
      0x66, 0xb8, 0x34, 0x12, //       mov ax, 0x1234
      0x66, 0xef, //                   out dx, ax
      0xb8, 0xef, 0xbe, 0xad, 0xde, // mov eax, 0xdeadbeef
      0xef, //                         out dx, eax
      0xf4, //                         hlt
    ]);
    const exit = await h.thread.finished;
    expect(h.uart.writes).toEqual([
      { offset: 0, bytes: [0x48] },
      { offset: 0, bytes: [0x34, 0x12] },
      { offset: 0, bytes: [0xef, 0xbe, 0xad, 0xde] },
    ]);
    // Without an in-kernel irqchip, HLT exits to user space: reported, with the rip after hlt.
    expect(exit?.kind).toBe('halt');
    expect(exit?.exitReasonName).toBe('KVM_EXIT_HLT');
    expect(exit?.rip).toBe(BigInt(CODE_ADDRESS + 20));
    expect(h.exits).toEqual([exit]);
  });

  it('splits rep outsb into one write per byte', async () => {
    const h = start([
      0x66, 0xba, 0xf8, 0x03, //             mov dx, 0x3f8
      0x48, 0x8d, 0x35, 0x08, 0, 0, 0, //    lea rsi, [rip + 8]  (-> "hello")
      0xb9, 0x05, 0, 0, 0, //                mov ecx, 5
      0xf3, 0x6e, //                         rep outsb
      0xf4, //                               hlt
      ...Buffer.from('hello'),
    ]);
    await h.thread.finished;
    expect(Buffer.from(h.uart.writes.flatMap((w) => w.bytes)).toString()).toBe('hello');
    expect(h.uart.writes).toHaveLength(5);
  });

  it('answers port reads from the main thread and the guest gets the values', async () => {
    const h = start([
      0x66, 0xba, 0xf9, 0x03, // mov dx, 0x3f9
      0xec, //                   in al, dx        (1 byte from offset 1)
      0x66, 0xba, 0xfa, 0x03, // mov dx, 0x3fa
      0xed, //                   in eax, dx       (4 bytes from offset 2; al is overwritten)
      0x66, 0xba, 0xf8, 0x03, // mov dx, 0x3f8
      0xef, //                   out dx, eax      (echo what the guest read)
      0xf4, //                   hlt
    ]);
    h.uart.answers.set(1, [0x77]);
    h.uart.answers.set(2, [0x01, 0x02, 0x03, 0x04]);
    await h.thread.finished;
    expect(h.uart.reads).toEqual([{ offset: 1, bytes: [0x77] }, { offset: 2, bytes: [1, 2, 3, 4] }]);
    expect(h.uart.writes).toEqual([{ offset: 0, bytes: [1, 2, 3, 4] }]);
  });

  it('a read sees every write the guest made before it', async () => {
    const h = start([
      0x66, 0xba, 0xf8, 0x03, // mov dx, 0x3f8
      0xb0, 0x01, 0xee, //       mov al, 1; out dx, al
      0xb0, 0x02, 0xee, //       mov al, 2; out dx, al
      0xec, //                   in al, dx
      0xf4, //                   hlt
    ]);
    let writesBeforeRead = -1;
    h.uart.onRead = () => { writesBeforeRead = h.uart.writes.length; };
    await h.thread.finished;
    expect(writesBeforeRead).toBe(2);
  });

  it('decodes MMIO writes and reads of 4 and 8 bytes', async () => {
    const h = start([
      0x48, 0xbb, 0x00, 0x00, 0x00, 0x10, 0, 0, 0, 0, //             movabs rbx, 0x10000000
      0xc7, 0x03, 0x44, 0x33, 0x22, 0x11, //                         mov dword [rbx], 0x11223344
      0x48, 0xb8, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, // movabs rax, 0x8877665544332211
      0x48, 0x89, 0x43, 0x08, //                                     mov [rbx+8], rax
      0x8b, 0x43, 0x10, //                                           mov eax, [rbx+0x10]
      0x89, 0x43, 0x14, //                                           mov [rbx+0x14], eax
      0x48, 0x8b, 0x43, 0x18, //                                     mov rax, [rbx+0x18]
      0x48, 0x89, 0x43, 0x20, //                                     mov [rbx+0x20], rax
      0xf4, //                                                       hlt
    ]);
    h.mmio.answers.set(0x10, [0xa1, 0xa2, 0xa3, 0xa4]);
    h.mmio.answers.set(0x18, [1, 2, 3, 4, 5, 6, 7, 8]);
    const exit = await h.thread.finished;
    expect(exit?.kind).toBe('halt');
    expect(h.mmio.reads).toEqual([
      { offset: 0x10, bytes: [0xa1, 0xa2, 0xa3, 0xa4] },
      { offset: 0x18, bytes: [1, 2, 3, 4, 5, 6, 7, 8] },
    ]);
    expect(h.mmio.writes).toEqual([
      { offset: 0x00, bytes: [0x44, 0x33, 0x22, 0x11] },
      { offset: 0x08, bytes: [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88] },
      { offset: 0x14, bytes: [0xa1, 0xa2, 0xa3, 0xa4] },
      { offset: 0x20, bytes: [1, 2, 3, 4, 5, 6, 7, 8] },
    ]);
  });

  it('answers shared-byte ports in the worker without asking the main thread', async () => {
    const shared = new Uint8Array(new SharedArrayBuffer(4));
    shared[2] = 0x60; // e.g. the UART's line status: THR empty, transmitter idle
    const h = start([
      0x66, 0xba, 0xfd, 0x03, // mov dx, 0x3fd
      0xec, 0xec, //             in al, dx; in al, dx
      0x66, 0xba, 0xf8, 0x03, // mov dx, 0x3f8
      0xee, //                   out dx, al
      0xf4, //                   hlt
    ], { sharedBytes: shared, sharedPortValues: [{ port: 0x3fd, sharedByteIndex: 2 }] });
    await h.thread.finished;
    expect(h.uart.reads).toEqual([]);
    expect(h.uart.writes).toEqual([{ offset: 0, bytes: [0x60] }]);
  });

  it('reports a triple fault with the exit name and the faulting rip, after earlier writes', async () => {
    const h = start([
      0x66, 0xba, 0xf8, 0x03, 0xb0, 0x21, 0xee, //       mov dx, 0x3f8; mov al, '!'; out dx, al
      0x48, 0xbb, 0x00, 0x00, 0x00, 0xd0, 0, 0, 0, 0, // movabs rbx, 0xd0000000 (not mapped by the page tables)
      0x8b, 0x03, //                                     mov eax, [rbx]  -> #PF, no IDT -> triple fault
      0xf4,
    ]);
    const exit = await h.thread.finished;
    expect(exit).toMatchObject({
      kind: 'triple-fault', exitReason: 8, exitReasonName: 'KVM_EXIT_SHUTDOWN', rip: BigInt(CODE_ADDRESS + 17),
    });
    // cr2 names the unmapped address the fault was about: the report says why the guest died.
    expect(exit?.message).toMatch(new RegExp(
      `^triple fault \\(KVM_EXIT_SHUTDOWN\\) at rip 0x${(CODE_ADDRESS + 17).toString(16)}; rsp 0x[0-9a-f]+, rflags 0x[0-9a-f]+, cr0 0x[0-9a-f]+, cr2 0xd0000000, `));
    // And what the vCPU did before: here its one port write (the last clue left where KVM resets the registers).
    expect(exit?.message).toMatch(/; after \d+ exits?, the last \(oldest first\): (.*, )?KVM_EXIT_IO out port 0x3f8(, |$)/);
    expect(h.uart.writes).toEqual([{ offset: 0, bytes: [0x21] }]);
  });

  it('reports accesses no device claims, and stops with an error when a device throws', async () => {
    const unclaimed: unknown[] = [];
    const h = start([
      0xb0, 0x01, 0xe6, 0x80, //  mov al, 1; out 0x80, al   (no device there)
      0xe4, 0x81, //              in al, 0x81               (no device there: reads 0xff)
      0x66, 0xba, 0xf8, 0x03, //  mov dx, 0x3f8
      0xee, //                    out dx, al                (echo 0xff; the device throws)
      0xeb, 0xfe, //              jmp $
    ], { onUnclaimedAccess: (access) => unclaimed.push(access) });
    h.uart.write = (_offset, data) => { throw new Error(`cannot take 0x${data[0]!.toString(16)}`); };
    const exit = await h.thread.finished;
    expect(unclaimed).toEqual([
      { space: 'pio', address: 0x80, size: 1, write: true },
      { space: 'pio', address: 0x81, size: 1, write: false },
    ]);
    expect(exit).toMatchObject({ kind: 'error', message: 'device error: pio write at 0x3f8: cannot take 0xff' });
    expect(h.exits).toEqual([exit]);
    expect(h.thread.running).toBe(false);
  });

  it('stop() ends a guest spinning in a loop', async () => {
    const h = start([0x66, 0xba, 0xf8, 0x03, 0xee, 0xeb, 0xfe]); // out dx, al; jmp $
    await h.uart.waitForWrites(1);
    await h.thread.stop();
    expect(h.thread.running).toBe(false);
    expect(await h.thread.finished).toBeUndefined(); // stopped, not exited on its own
    expect(h.exits).toEqual([]);
  });

  it('pins the vCPU thread to its hostCpus before the guest runs, and reports a refused pinning as the vCPU exit', async () => {
    // The guest's first write is made on the pinned thread: pinning comes before KVM_RUN.
    const lastCpu = cpus().length - 1;
    const allowedList = (status: string) => /^Cpus_allowed_list:\s*(\S+)$/m.exec(status)?.[1];
    const processAllowed = allowedList(readFileSync('/proc/self/status', 'utf8'));
    const h = start([0x66, 0xba, 0xf8, 0x03, 0xee, 0xeb, 0xfe], { hostCpus: [lastCpu] }); // out dx, al; jmp $
    await h.uart.waitForWrites(1);
    const status = readFileSync(`/proc/self/task/${h.thread.kernelThreadId}/status`, 'utf8');
    expect(allowedList(status)).toBe(String(lastCpu));
    // The main thread is not pinned by it.
    expect(allowedList(readFileSync('/proc/self/status', 'utf8'))).toBe(processAllowed);

    // A CPU the mask names but the host does not have: the kernel refuses (EINVAL), the guest never runs.
    const refused = start([0x66, 0xba, 0xf8, 0x03, 0xee, 0xeb, 0xfe], { hostCpus: [1023] });
    const exit = await refused.thread.finished;
    expect(exit?.message).toMatch(/^vCPU 0: sched_setaffinity to host CPUs 1023 failed: EINVAL/);
    expect(refused.uart.writes).toEqual([]);
  });

  it('stop() ends a vCPU halted inside KVM_RUN (in-kernel irqchip)', async () => {
    // cli; hlt with the irqchip: KVM_RUN blocks in the kernel, only a signal gets it out.
    const h = start([0x66, 0xba, 0xf8, 0x03, 0xee, 0xfa, 0xf4], { irqchip: true });
    await h.uart.waitForWrites(1);
    const stat = () => readFileSync(`/proc/self/task/${h.thread.kernelThreadId}/stat`, 'utf8');
    // Field 3 of stat: 'S' = sleeping, here in the kernel's halt wait (the worker has nothing else to wait for).
    while (stat().split(') ')[1]![0] !== 'S') await new Promise((resolve) => setTimeout(resolve, 5));
    await h.thread.stop();
    expect(h.thread.running).toBe(false);
    expect(h.exits).toEqual([]);
  });

  it('stop() ends a vCPU waiting for the main thread to answer a read', async () => {
    const shared = new Uint8Array(new SharedArrayBuffer(1));
    const h = start([
      0x66, 0xba, 0xfd, 0x03, // mov dx, 0x3fd
      0xec, //                   1: in al, dx   (worker-answered: spin until the test sets the byte)
      0x84, 0xc0, 0x74, 0xfb, // test al, al; jz 1b
      0x66, 0xba, 0xf8, 0x03, // mov dx, 0x3f8
      0xec, //                   in al, dx      (needs the main thread, which is busy)
      0xf4, //                   hlt
    ], { sharedBytes: shared, sharedPortValues: [{ port: 0x3fd, sharedByteIndex: 0 }] });
    // From here until stop() the main thread never yields, so it cannot answer the read.
    shared[0] = 1;
    blockUntil(() => h.thread.waitingForRead);
    expect(h.thread.waitingForRead).toBe(true);
    await h.thread.stop();
    expect(h.thread.running).toBe(false);
    expect(h.uart.reads).toEqual([]); // never answered
    expect(h.exits).toEqual([]);
  });

  it('leaves no worker and no fd behind', async () => {
    const before = openFdCount();
    const h = start([0x66, 0xba, 0xf8, 0x03, 0xee, 0xeb, 0xfe], { irqchip: true });
    await h.uart.waitForWrites(1);
    expect(openFdCount()).toBeGreaterThan(before);
    const threadId = h.thread.kernelThreadId!;
    expect(existsSync(`/proc/self/task/${threadId}`)).toBe(true);
    await h.set.stopAll();
    h.guest.close();
    open = [];
    expect(openFdCount()).toBe(before);
    expect(h.thread.running).toBe(false);
    expect(existsSync(`/proc/self/task/${threadId}`)).toBe(false);
  });

  it('runs a vCPU in the worker started for it before the vCPU existed', async () => {
    const workers = new PrestartedVcpuWorkers(1);
    const h = create([
      0x66, 0xba, 0xf8, 0x03, // mov dx, 0x3f8
      0xb0, 0x48, 0xee, //       mov al, 'H'; out dx, al
      0xf4, //                   hlt
    ]);
    await h.set.startAll(workers);
    expect(workers.take(0)).toBeUndefined(); // it was handed out
    expect((await h.thread.finished)?.kind).toBe('halt');
    expect(h.uart.writes).toEqual([{ offset: 0, bytes: [0x48] }]);
  });

  it('stop() ends a vCPU just given to its pre-started worker (which may still be loading), and unused workers are ended', async () => {
    const workers = new PrestartedVcpuWorkers(2);
    const h = create([0xeb, 0xfe]); // jmp $ (vCPU 0 only: vCPU 1's worker is not used)
    await h.set.startAll(workers);
    await Promise.all([h.set.stopAll(), workers.endUnused()]);
    expect(h.thread.running).toBe(false);
    expect(await h.thread.finished).toBeUndefined();
    expect(h.exits).toEqual([]);
    expect(workers.take(1)).toBeUndefined();
  });

  it('tells when the worker first entered KVM_RUN, once', async () => {
    const stamps: bigint[] = [];
    const h = create([
      0x66, 0xba, 0xf8, 0x03, // mov dx, 0x3f8
      0xee, 0xee, 0xee, //       out dx, al (x3: KVM_RUN is entered 4 times)
      0xf4, //                   hlt
    ], { onFirstRun: (at) => stamps.push(at) });
    let firstWriteAt: bigint | undefined;
    const record = h.uart.write.bind(h.uart);
    h.uart.write = (offset, data) => {
      firstWriteAt ??= process.hrtime.bigint();
      record(offset, data);
    };
    expect(h.thread.firstRunAt).toBeUndefined();
    const startedAt = process.hrtime.bigint();
    h.thread.start();
    await h.thread.finished;
    expect(stamps).toHaveLength(1);
    expect(h.thread.firstRunAt).toBe(stamps[0]);
    // Same clock in both threads: after start(), before the main thread saw the guest's first write.
    expect(stamps[0]! >= startedAt).toBe(true);
    expect(stamps[0]! <= firstWriteAt!).toBe(true);
  });

  const TURN = DATA_ADDRESS;
  const GO = DATA_ADDRESS + 4;
  const FLAG = DATA_ADDRESS + 8;
  const abs32 = (value: number) => [value & 0xff, (value >> 8) & 0xff, (value >> 16) & 0xff, value >>> 24];
  const u32 = (bytes: number[]) => new DataView(Uint8Array.from(bytes).buffer).getUint32(0, true);

  it('devices see the writes of two vCPUs taking turns in the order they were made', async () => {
    const LIMIT = 64;
    const h = create([
      0x66, 0xba, 0xf8, 0x03, //                mov dx, 0x3f8
      0x8b, 0x04, 0x25, ...abs32(TURN), //      1: mov eax, [TURN]
      0x3d, ...abs32(LIMIT), //                 cmp eax, LIMIT
      0x73, 0x15, //                            jae 2f
      0x89, 0xc3, 0x83, 0xe3, 0x01, //          mov ebx, eax; and ebx, 1
      0x39, 0xfb, 0x75, 0xe9, //                cmp ebx, edi; jne 1b        (not this vCPU's turn)
      0xef, //                                  out dx, eax
      0xff, 0xc0, //                            inc eax
      0x89, 0x04, 0x25, ...abs32(TURN), //      mov [TURN], eax             (the other vCPU's turn)
      0xeb, 0xdd, //                            jmp 1b
      0xf4, //                                  2: hlt
    ], { vcpuCount: 2 });
    const memory = h.guest.ram.memory;
    const record = h.uart.write.bind(h.uart);
    h.uart.write = (offset, data) => {
      record(offset, data);
      // While the main thread is busy with write k, both vCPUs post another one.
      const k = u32([...data]);
      if (k % 4 === 0 && k + 3 < LIMIT) blockUntil(() => memory.readU32(TURN) >= k + 3);
    };
    await h.set.startAll();
    await Promise.all(h.threads.map((t) => t.finished));
    expect(h.uart.writes.map((w) => u32(w.bytes))).toEqual(Array.from({ length: LIMIT }, (_, i) => i));
  });

  it('a read by one vCPU sees the write another vCPU made before it (ordered through guest RAM)', async () => {
    const h = create([
      0x85, 0xff, 0x75, 0x1e, //                       test edi, edi; jnz 2f
      0x8b, 0x04, 0x25, ...abs32(GO), //               1: mov eax, [GO]           (vCPU 0)
      0x85, 0xc0, 0x74, 0xf5, //                       test eax, eax; jz 1b
      0x66, 0xba, 0xf8, 0x03, 0xb0, 0x01, 0xee, //     mov dx, 0x3f8; mov al, 1; out dx, al
      0xc7, 0x04, 0x25, ...abs32(FLAG), 1, 0, 0, 0, // mov dword [FLAG], 1
      0xf4, //                                         hlt
      0x66, 0xba, 0xff, 0x03, 0xee, //                 2: mov dx, 0x3ff; out dx, al (vCPU 1: marker)
      0xc7, 0x04, 0x25, ...abs32(GO), 1, 0, 0, 0, //   mov dword [GO], 1
      0x8b, 0x04, 0x25, ...abs32(FLAG), //             3: mov eax, [FLAG]
      0x85, 0xc0, 0x74, 0xf5, //                       test eax, eax; jz 3b
      0x66, 0xba, 0xf8, 0x03, 0xec, //                 mov dx, 0x3f8; in al, dx
      0xf4, //                                         hlt
    ], { vcpuCount: 2 });
    let writesSeenByRead = -1;
    h.uart.onRead = () => { writesSeenByRead = h.uart.writes.filter((w) => w.offset === 0).length; };
    const record = h.uart.write.bind(h.uart);
    h.uart.write = (offset, data) => {
      record(offset, data);
      // vCPU 1's marker: hold the main thread until vCPU 0 has written and vCPU 1 reads.
      if (offset === 7) blockUntil(() => h.threads[1]!.waitingForRead);
    };
    await h.set.startAll();
    await Promise.all(h.threads.map((t) => t.finished));
    expect(h.uart.reads).toHaveLength(1);
    expect(writesSeenByRead).toBe(1);
  });
});
