// The body of a vCPU thread (a worker_thread): call KVM_RUN, look at why it
// returned, deal with it, repeat.
//
//   port/MMIO write  -> post it to the VM's write ring, run on
//   port/MMIO read   -> answer from shared bytes if the port is "worker
//                       answered", else ask the main thread and wait
//   signal / stop    -> KVM_RUN returns EINTR; leave when stop was requested
//   anything else    -> report it (halt, triple fault, ...) and leave
//
// The thread is started before its vCPU exists (prestarted-workers.ts): it
// loads its modules while the main thread builds the VM, then waits for one
// message, VcpuStartMessage, that gives it its vCPU. The vCPU fd was opened
// by the main thread (fds are process-wide); this thread maps its own view
// of kvm_run and unmaps it when it leaves. It owns nothing else: the main
// thread closes the fd.

import { isMainThread, parentPort } from 'node:worker_threads';
import { ExitReason, KVM_EXIT_IO_OUT } from '../kvm/exit-reasons.js';
import { writeTraceLine } from '../trace.js';
import { KVM } from '../kvm/ioctls.js';
import {
  MAP_SHARED, PROT_READ, PROT_WRITE, lastErrno, libc, mapMemory, unmapMemory, viewMemory,
} from '../sys/libc.js';
import { KvmRun } from '../kvm/structs/kvm-run.js';
import { KvmRegs, REGS_SIZE, SREGS_SIZE, decodeRegs, decodeSregs } from '../kvm/structs/registers.js';
import { Errno, SystemCallError } from '../sys/system-error.js';
import { pinCallingThread } from '../sys/thread-affinity.js';
import { Ctl, SharedChannel, Space, VcpuChannel } from './channel.js';
import { requestRead } from './read-mailbox.js';
import { RecentExits, describeExitAccess } from './recent-exits.js';
import { CpuSnapshot, VcpuExit, describeExit, errorExit } from './vcpu-exit.js';
import { postWrite } from './write-ring.js';

/**
 * The message that gives a waiting worker its vCPU (structured-cloned;
 * SharedArrayBuffers are shared). A worker sent null instead ends without a
 * vCPU (prestarted-workers.ts, endWaitingWorker()).
 */
export interface VcpuStartMessage {
  vcpuId: number;
  vcpuFd: number;
  mmapSize: number;
  /** This vCPU's VcpuChannel. */
  channel: SharedArrayBuffer;
  /** The VM's SharedChannel (the write ring all vCPUs share). */
  shared: SharedArrayBuffer;
  /** Bytes the devices keep up to date for worker-answered port reads. */
  sharedBytes?: SharedArrayBuffer;
  /** Port reads (1 byte wide) answered from sharedBytes[sharedByteIndex]. */
  sharedPortValues: readonly { port: number; sharedByteIndex: number }[];
  /** Tests only: what a fake vCPU module is given (VcpuThreadOptions.fakeWorker). */
  fakeData?: unknown;
  /** `--trace exits`: where this thread writes a line per exit (src/trace.ts). */
  trace?: { fd: number; startTime: number };
  /** `--cpus affinity=`: the host CPUs this thread pins itself to before the guest runs; absent: anywhere. */
  hostCpus?: readonly number[];
}

/**
 * What a worker tells the main thread: when it first entered KVM_RUN
 * (process.hrtime.bigint(), once), and its final exit, unless it was simply
 * stopped.
 */
export type VcpuWorkerMessage =
  | { type: 'first-run'; at: bigint }
  | { type: 'exit'; exit: VcpuExit };

/** The worker's side of one vCPU: everything it needs to post writes and ask for reads. */
export interface VcpuLink {
  vcpuId: number;
  shared: SharedChannel;
  channel: VcpuChannel;
}

function runVcpu(data: VcpuStartMessage, onFirstRun: (at: bigint) => void): VcpuExit | undefined {
  const channel = new VcpuChannel(data.channel);
  const link: VcpuLink = { vcpuId: data.vcpuId, shared: new SharedChannel(data.shared), channel };
  const shared = data.sharedBytes ? new Uint8Array(data.sharedBytes) : undefined;
  const sharedPorts = new Map(data.sharedPortValues.map((p) => [p.port, p.sharedByteIndex]));
  const fd = data.vcpuFd;

  // Publish our thread id first, so that stop() can signal us from now on.
  Atomics.store(channel.control, Ctl.THREAD_ID, libc.gettid());
  if (data.hostCpus) {
    try {
      pinCallingThread(data.hostCpus);
    } catch (error) {
      return errorExit(data.vcpuId, `vCPU ${data.vcpuId}: ${(error as Error).message}`);
    }
  }

  const runAddress = mapMemory(data.mmapSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
  const run = new KvmRun(viewMemory(runAddress, data.mmapSize));
  const recentExits = new RecentExits();
  let firstRun = true;
  try {
    for (;;) {
      if (channel.stopRequested) return undefined;
      if (firstRun) {
        firstRun = false;
        onFirstRun(process.hrtime.bigint());
      }
      if (libc.ioctlInt(fd, KVM.RUN, 0) < 0) {
        const errno = lastErrno();
        if (errno === Errno.EINTR || errno === Errno.EAGAIN) continue; // kicked: the loop top checks stop
        return errorExit(data.vcpuId, new SystemCallError('KVM_RUN', errno).message);
      }
      const reason = run.exitReason;
      if (data.trace) writeTraceLine(data.trace.fd, data.trace.startTime, 'exits', describeExitForTrace(data.vcpuId, run, reason));
      if (reason === ExitReason.IO) {
        recentExits.record(reason, run.ioDirection === KVM_EXIT_IO_OUT, run.ioPort);
        if (!handleIo(run, link, shared, sharedPorts)) return undefined;
      } else if (reason === ExitReason.MMIO) {
        recentExits.record(reason, run.mmioIsWrite, Number(run.mmioAddress));
        if (!handleMmio(run, link)) return undefined;
      } else if (reason === ExitReason.INTR) {
        recentExits.record(reason, false, 0);
      } else {
        return fatalExit(data.vcpuId, fd, run, reason, recentExits);
      }
    }
  } finally {
    unmapMemory(runAddress, data.mmapSize);
  }
}

/** `vcpu0 KVM_EXIT_IO out port 0x3f8 size 1`: the exit's reason and what it is about. */
function describeExitForTrace(vcpuId: number, run: KvmRun, reason: number): string {
  if (reason === ExitReason.IO) {
    const access = describeExitAccess(reason, run.ioDirection === KVM_EXIT_IO_OUT, run.ioPort);
    return `vcpu${vcpuId} ${access} size ${run.ioSize}${run.ioCount > 1 ? ` count ${run.ioCount}` : ''}`;
  }
  if (reason === ExitReason.MMIO) {
    return `vcpu${vcpuId} ${describeExitAccess(reason, run.mmioIsWrite, run.mmioAddress)} size ${run.mmioData().byteLength}`;
  }
  return `vcpu${vcpuId} ${describeExitAccess(reason, false, 0)}`;
}

/** Returns false when stop was requested while waiting for the main thread. */
function handleIo(
  run: KvmRun, link: VcpuLink, shared: Uint8Array | undefined, sharedPorts: Map<number, number>,
): boolean {
  const port = run.ioPort;
  const size = run.ioSize;
  const count = run.ioCount;
  const data = run.ioData();
  if (run.ioDirection === KVM_EXIT_IO_OUT) {
    // `rep outs` delivers `count` accesses at once: post each as its own write.
    for (let i = 0; i < count; i++) {
      if (!postWrite(link.shared, link.channel, link.vcpuId, Space.PIO, port, data.subarray(i * size, (i + 1) * size))) {
        return false;
      }
    }
    return true;
  }
  const sharedIndex = sharedPorts.get(port);
  if (sharedIndex !== undefined && shared !== undefined && size === 1) {
    // Fast path: no round trip to the main thread.
    for (let i = 0; i < count; i++) data[i] = Atomics.load(shared, sharedIndex);
    return true;
  }
  return requestRead(link.shared, link.channel, Space.PIO, port, size, count, data);
}

function handleMmio(run: KvmRun, link: VcpuLink): boolean {
  const address = Number(run.mmioAddress);
  const data = run.mmioData();
  if (run.mmioIsWrite) return postWrite(link.shared, link.channel, link.vcpuId, Space.MMIO, address, data);
  return requestRead(link.shared, link.channel, Space.MMIO, address, data.byteLength, 1, data);
}

function fatalExit(vcpuId: number, fd: number, run: KvmRun, reason: number, recentExits: RecentExits): VcpuExit {
  const details: Parameters<typeof describeExit>[3] = {};
  if (reason === ExitReason.INTERNAL_ERROR) {
    details.suberror = run.internalSuberror;
    details.data = run.internalData();
  } else if (reason === ExitReason.SYSTEM_EVENT) {
    details.systemEventType = run.systemEventType;
    details.data = run.systemEventData();
  } else if (reason === ExitReason.FAIL_ENTRY) {
    details.data = [run.failEntryReason];
  }
  const regs = readRegs(fd);
  if (DIAGNOSED_EXITS.has(reason)) {
    if (regs) details.cpu = readSnapshot(fd, regs);
    details.recentExits = recentExits.describe();
  }
  return describeExit(vcpuId, reason, regs?.rip, details);
}

/** Exits that end the guest with nothing else to go on: their report carries the control registers and the exits before. */
const DIAGNOSED_EXITS = new Set<number>([ExitReason.SHUTDOWN, ExitReason.FAIL_ENTRY, ExitReason.INTERNAL_ERROR]);

/** The vCPU's general registers (read once per report), or undefined if KVM refuses. */
function readRegs(fd: number): KvmRegs | undefined {
  const regs = new Uint8Array(REGS_SIZE);
  return libc.ioctlPtr(fd, KVM.GET_REGS, regs) < 0 ? undefined : decodeRegs(regs);
}

function readSnapshot(fd: number, { rsp, rflags }: KvmRegs): CpuSnapshot | undefined {
  const sregs = new Uint8Array(SREGS_SIZE);
  if (libc.ioctlPtr(fd, KVM.GET_SREGS, sregs) < 0) return undefined;
  const { cr0, cr2, cr3, cr4, efer, idt } = decodeSregs(sregs);
  return { rsp, rflags, cr0, cr2, cr3, cr4, efer, idtBase: idt.base, idtLimit: idt.limit };
}

// This module is a worker's entry point; imported anywhere else it does nothing.
// Once the vCPU has run, the port has no listener left and the thread ends.
if (!isMainThread && parentPort) {
  const port = parentPort;
  port.once('message', (input: VcpuStartMessage | null) => {
    if (input === null) return;
    let exit: VcpuExit | undefined;
    try {
      exit = runVcpu(input, (at) => port.postMessage({ type: 'first-run', at } satisfies VcpuWorkerMessage));
    } catch (error) {
      exit = errorExit(input.vcpuId, `vCPU ${input.vcpuId} thread failed: ${(error as Error).message}`);
    }
    if (exit) port.postMessage({ type: 'exit', exit } satisfies VcpuWorkerMessage);
  });
}
