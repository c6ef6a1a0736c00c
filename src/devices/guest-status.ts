// The guest status device: how a guest tells tsvmm its verdict, so that a CI
// job can read it from tsvmm's exit status (as QEMU's isa-debug-exit does,
// but with the status as is, and with a way to report it before a clean
// power-off). It is one page of MMIO; tsvmm announces its address on the
// kernel command line as `tsvmm.status=0x...`, and a guest's user space
// writes to it through /dev/mem, with nothing but busybox:
//
//   devmem $((ADDR + 0)) 8 3   # end the VM now; tsvmm exits with status 3
//   devmem $((ADDR + 4)) 8 3   # remember status 3; the VM goes on (e.g. to a clean poweroff)
//   devmem $((ADDR + 8)) 8 1   # init has started (the boot timer's second mark)
//
// Only the low byte of a write counts (statuses are 0-255, as for a
// process). Reading the IDENTITY register gives "TSVM", so that a script can
// check that it found the device.
import type { BusDevice } from '../bus/bus.js';

/** Register offsets in the device's page. */
export const GuestStatusRegister = {
  /** Write: the VM ends now, with the low byte as tsvmm's exit status. */
  EXIT: 0x0,
  /** Write: the status tsvmm exits with when the guest later powers off or resets. */
  STATUS: 0x4,
  /** Write (any value): the guest's init has started. */
  INIT_STARTED: 0x8,
  /** Read: GUEST_STATUS_IDENTITY. */
  IDENTITY: 0xc,
} as const;

/** "TSVM" as a little-endian 32-bit value. */
export const GUEST_STATUS_IDENTITY = 0x4d56_5354;

/** The kernel parameter that tells the guest where the device is. */
export const GUEST_STATUS_KERNEL_PARAMETER = 'tsvmm.status';

export interface GuestStatusEvents {
  /** The guest asked to end the VM with `status`. */
  onExit(status: number): void;
  /** The guest's init signalled its start. */
  onInitStarted(): void;
}

export class GuestStatusDevice implements BusDevice {
  private reported: number | undefined;

  constructor(private readonly events: GuestStatusEvents) {}

  /** The status last written to STATUS (or EXIT), if any. */
  get reportedStatus(): number | undefined {
    return this.reported;
  }

  read(offset: number, data: Uint8Array): void {
    data.fill(0);
    if (offset === GuestStatusRegister.IDENTITY) {
      const identity = new Uint8Array(4);
      new DataView(identity.buffer).setUint32(0, GUEST_STATUS_IDENTITY, true);
      data.set(identity.subarray(0, data.byteLength));
    }
  }

  write(offset: number, data: Uint8Array): void {
    const value = data[0] ?? 0;
    switch (offset) {
      case GuestStatusRegister.EXIT:
        this.reported = value;
        this.events.onExit(value);
        break;
      case GuestStatusRegister.STATUS:
        this.reported = value;
        break;
      case GuestStatusRegister.INIT_STARTED:
        this.events.onInitStarted();
        break;
      default:
        break; // Reserved: ignored, as a real device would.
    }
  }
}

/** `tsvmm.status=0xd1000000`: what tsvmm adds to the kernel command line. */
export function guestStatusParameter(base: number): string {
  return `${GUEST_STATUS_KERNEL_PARAMETER}=0x${base.toString(16)}`;
}
