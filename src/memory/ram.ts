// Guest RAM: one anonymous shared mapping in the VMM process, seen by the
// VMM as a GuestMemory and by KVM as one memory slot per guest region.
//
// MAP_NORESERVE: the kernel hands out pages only when the guest touches them,
// so a 512 MiB guest that uses 40 MiB costs 40 MiB. MAP_SHARED: the mapping
// must stay one object when KVM pins its pages (and it lets a future
// vhost-user backend share it).
//
// The caller decides where RAM appears in the guest (on x86, RAM from 0 up to
// the 32-bit MMIO hole, the rest from 4 GiB); the regions are packed one after
// another in the host mapping.

import {
  MAP_ANONYMOUS, MAP_NORESERVE, MAP_SHARED, PROT_READ, PROT_WRITE, mapMemory, unmapMemory, viewMemory,
} from '../sys/libc.js';
import { ConfigError } from '../config/types.js';
import { GuestMemory, MemoryRegion } from './guest-memory.js';
import { constants as bufferConstants } from 'node:buffer';

/** Where a run of RAM appears in guest physical address space. */
export interface GuestRamRegion {
  guestAddress: number;
  size: number;
}

export interface GuestRam {
  memory: GuestMemory;
  /** Host address of the mapping (of hostOffset 0). */
  hostAddress: bigint;
  /** Unmaps the RAM. The GuestMemory must not be touched afterwards (it would fault). */
  free(): void;
}

/** The bits of VmFd that RAM registration needs. */
export interface MemorySlotTarget {
  setUserMemoryRegion(slot: number, guestAddress: number | bigint, size: number | bigint, hostAddress: number | bigint): void;
}

export class GuestRamError extends ConfigError {
  constructor(message: string) {
    super(message);
    this.name = 'GuestRamError';
  }
}

const PAGE_SIZE = 4096;

/**
 * Maps `sizeBytes` of zeroed RAM and lays `regions` (which must add up to
 * `sizeBytes`, page-aligned, in increasing guest order, not overlapping) out
 * in it.
 */
export function allocateGuestRam(sizeBytes: number, regions: readonly GuestRamRegion[]): GuestRam {
  validate(sizeBytes, regions);
  const address = mapMemory(sizeBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE);
  let hostOffset = 0;
  const layout: MemoryRegion[] = regions.map((r) => {
    const region = { guestAddress: r.guestAddress, size: r.size, hostOffset };
    hostOffset += r.size;
    return region;
  });
  let freed = false;
  return {
    memory: new GuestMemory(viewMemory(address, sizeBytes), layout),
    hostAddress: BigInt(address),
    free() {
      if (freed) return;
      freed = true;
      unmapMemory(address, sizeBytes);
    },
  };
}

/** Registers each region of `ram` as KVM memory slot firstSlot, firstSlot + 1, ... */
export function registerGuestRam(vm: MemorySlotTarget, ram: GuestRam, firstSlot = 0): void {
  ram.memory.regions.forEach((region, i) => {
    vm.setUserMemoryRegion(firstSlot + i, region.guestAddress, region.size,
      ram.hostAddress + BigInt(region.hostOffset));
  });
}

function validate(sizeBytes: number, regions: readonly GuestRamRegion[]): void {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % PAGE_SIZE !== 0) {
    throw new GuestRamError(`guest RAM size ${sizeBytes} must be a positive multiple of 4 KiB`);
  }
  // One Uint8Array covers all of RAM, and Node 20 caps those at 4 GiB.
  if (sizeBytes > bufferConstants.MAX_LENGTH) {
    throw new GuestRamError(
      `guest RAM of ${sizeBytes / 2 ** 20} MiB is too large: at most ${bufferConstants.MAX_LENGTH / 2 ** 20} MiB is supported`);
  }
  let total = 0;
  let end = 0;
  for (const r of regions) {
    const where = `RAM region at 0x${r.guestAddress.toString(16)}`;
    if (r.guestAddress % PAGE_SIZE !== 0 || r.size % PAGE_SIZE !== 0 || r.size <= 0) {
      throw new GuestRamError(`${where} (size 0x${r.size.toString(16)}) must be page aligned and non-empty`);
    }
    if (r.guestAddress < end) {
      throw new GuestRamError(`${where} overlaps or precedes the previous region (regions must be in increasing order)`);
    }
    end = r.guestAddress + r.size;
    total += r.size;
  }
  if (total !== sizeBytes) {
    throw new GuestRamError(`RAM regions add up to ${total} bytes, but ${sizeBytes} were requested`);
  }
}
