// The virtio-mmio transport, version 2 (virtio 1.x spec 4.2.2): a block of
// 32-bit registers through which the driver discovers a device, negotiates
// features, walks the status state machine, places the queues in guest RAM
// and notifies them. The device behind it only sees queues and notifications
// (device.ts).
//
// The driver is never trusted: a bad queue setup, a malformed descriptor or
// any error out of the device sets DEVICE_NEEDS_RESET and raises a
// config-change interrupt (spec 2.1.2); nothing escapes to the VMM.
import { hex } from '../../hex.js';
import { trace } from '../../trace.js';
import type { BusDevice } from '../../bus/bus.js';
import { guestLog, type GuestLog } from '../../log.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import type { InterruptLine } from '../interrupt-line.js';
import {
  VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_RING_INDIRECT_DESC, VIRTIO_F_VERSION_1,
  type DeviceContext, type VirtioDevice,
} from './device.js';
import { Virtqueue } from './queue.js';

/** Register offsets (include/uapi/linux/virtio_mmio.h). */
export const MmioRegister = {
  MagicValue: 0x000,
  Version: 0x004,
  DeviceId: 0x008,
  VendorId: 0x00c,
  DeviceFeatures: 0x010,
  DeviceFeaturesSel: 0x014,
  DriverFeatures: 0x020,
  DriverFeaturesSel: 0x024,
  QueueSel: 0x030,
  QueueNumMax: 0x034,
  QueueNum: 0x038,
  QueueReady: 0x044,
  QueueNotify: 0x050,
  InterruptStatus: 0x060,
  InterruptAck: 0x064,
  Status: 0x070,
  QueueDescLow: 0x080,
  QueueDescHigh: 0x084,
  QueueDriverLow: 0x090,
  QueueDriverHigh: 0x094,
  QueueDeviceLow: 0x0a0,
  QueueDeviceHigh: 0x0a4,
  ShmSel: 0x0ac,
  ShmLenLow: 0x0b0,
  ShmLenHigh: 0x0b4,
  ShmBaseLow: 0x0b8,
  ShmBaseHigh: 0x0bc,
  ConfigGeneration: 0x0fc,
  Config: 0x100,
} as const;

/** Register names by offset, for `--trace mmio`. */
const MMIO_REGISTER_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(MmioRegister).map(([name, offset]) => [offset, name]));

/** Device status bits (spec 2.1). */
export const DeviceStatus = {
  Acknowledge: 1,
  Driver: 2,
  DriverOk: 4,
  FeaturesOk: 8,
  DeviceNeedsReset: 0x40,
  Failed: 0x80,
} as const;

/** InterruptStatus bits (spec 4.2.2). */
export const MmioInterrupt = { UsedBuffer: 1, ConfigChange: 2 } as const;

/** "virt" read as a little-endian 32-bit value. */
export const VIRTIO_MMIO_MAGIC = 0x74726976;
/** Version 2 = virtio 1.x ("modern"); version 1 was the legacy interface. */
export const VIRTIO_MMIO_VERSION = 2;
/**
 * Any value works (Linux drivers match on DeviceID only); this one reads
 * "TSVM" in memory, the same way QEMU's 0x554d4551 reads "QEMU", so the
 * guest's /sys/bus/virtio/devices/virtioN/vendor tells who made the device.
 */
export const TSVMM_VENDOR_ID = 0x4d565354;
/** Registers (0x000-0x0ff) plus 0x100 bytes of device config space. */
export const VIRTIO_MMIO_REGION_SIZE = 0x200;

/**
 * What the transport reports, one kind per mistake (the guest log counts and
 * rate-limits per kind, so a driver looping on one cannot hide another).
 */
export const MmioLogKind = {
  BadAccess: 'virtio-mmio: bad register access',
  RefusedWrite: 'virtio-mmio: refused register write',
  Negotiation: 'virtio-mmio: negotiation error',
  DeviceFailure: 'virtio-mmio: device failure',
} as const;
type MmioLogKind = (typeof MmioLogKind)[keyof typeof MmioLogKind];

export interface MmioTransportOptions {
  /** Where driver errors and device failures are reported (default: the process's guest log, quiet unless TSVMM_DEBUG). */
  logger?: GuestLog;
  /** Tests: collect every message here instead of the logger. */
  log?: (message: string) => void;
}

interface QueueSetup {
  size: number;
  ready: boolean;
  desc: [number, number];
  driver: [number, number];
  device: [number, number];
  queue: Virtqueue | undefined;
}

/** What the driver can set in Status; DEVICE_NEEDS_RESET belongs to the device. */
const DRIVER_STATUS_BITS = DeviceStatus.Acknowledge | DeviceStatus.Driver | DeviceStatus.DriverOk
  | DeviceStatus.FeaturesOk | DeviceStatus.Failed;

export class MmioTransport implements BusDevice {
  private readonly log: (kind: MmioLogKind, message: string) => void;
  private status = 0;
  private deviceFeaturesSel = 0;
  private driverFeaturesSel = 0;
  private driverFeatures = 0n;
  private queueSel = 0;
  private queues: QueueSetup[] = [];
  private interruptStatus = 0;
  /**
   * Causes raised since the driver last read InterruptStatus. Guest writes
   * reach devices posted (src/vcpu/write-ring.ts): an InterruptACK can be
   * applied after the device raised the same cause again, and clearing it
   * then would lose that interrupt (the driver's handler would read 0). An
   * ACK only clears what the driver could have seen in its last read.
   */
  private raisedSinceStatusRead = 0;
  private configGeneration = 0;
  /** The context handed to the device at DRIVER_OK; a reset makes it inert. */
  private context: (DeviceContext & { live: boolean }) | undefined;

  constructor(
    readonly device: VirtioDevice,
    private readonly memory: GuestMemory,
    private readonly interrupt: InterruptLine,
    options: MmioTransportOptions = {},
  ) {
    const collect = options.log;
    const logger = options.logger ?? guestLog;
    this.log = collect ? (_kind, message) => collect(message) : (kind, message) => logger.report(kind, message);
    this.resetTransport();
  }

  /** Feature bits offered to the driver: the device's plus VERSION_1. */
  get offeredFeatures(): bigint {
    return this.device.features | VIRTIO_F_VERSION_1;
  }

  /** Current Status register value (for logs and tests). */
  get deviceStatus(): number {
    return this.status;
  }

  registerName(offset: number): string | undefined {
    if (offset >= MmioRegister.Config) return `Config+${hex(offset - MmioRegister.Config)}`;
    return MMIO_REGISTER_NAMES.get(offset);
  }

  read(offset: number, data: Uint8Array): void {
    if (offset >= MmioRegister.Config) {
      this.guard('config read', () => this.device.readConfig(offset - MmioRegister.Config, data));
      return;
    }
    data.fill(0);
    // Spec 4.2.2.2: registers are only accessed 32 bits wide and aligned.
    if (data.byteLength !== 4 || offset % 4 !== 0) {
      this.log(MmioLogKind.BadAccess, `${this.device.name}: ignored ${data.byteLength}-byte read of register 0x${offset.toString(16)}`);
      return;
    }
    new DataView(data.buffer, data.byteOffset, 4).setUint32(0, this.readRegister(offset), true);
  }

  write(offset: number, data: Uint8Array): void {
    if (offset >= MmioRegister.Config) {
      this.guard('config write', () => this.device.writeConfig(offset - MmioRegister.Config, data));
      return;
    }
    if (data.byteLength !== 4 || offset % 4 !== 0) {
      this.log(MmioLogKind.BadAccess, `${this.device.name}: ignored ${data.byteLength}-byte write to register 0x${offset.toString(16)}`);
      return;
    }
    this.writeRegister(offset, new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true));
  }

  /** Exactly what a QueueNotify write does; the VMM wires the register's ioeventfd here. */
  notifyQueue(index: number): void {
    if ((this.status & DeviceStatus.DriverOk) === 0 || (this.status & DeviceStatus.DeviceNeedsReset) !== 0) return;
    if (this.queues[index]?.queue === undefined) {
      this.log(MmioLogKind.BadAccess, `${this.device.name}: notify for queue ${index}, which is not enabled`);
      return;
    }
    this.guard(`queue ${index}`, () => this.device.queueNotify(index));
  }

  private readRegister(offset: number): number {
    const setup = this.queues[this.queueSel];
    switch (offset) {
      case MmioRegister.MagicValue: return VIRTIO_MMIO_MAGIC;
      case MmioRegister.Version: return VIRTIO_MMIO_VERSION;
      case MmioRegister.DeviceId: return this.device.type;
      case MmioRegister.VendorId: return TSVMM_VENDOR_ID;
      case MmioRegister.DeviceFeatures:
        return this.deviceFeaturesSel > 1 ? 0 : Number((this.offeredFeatures >> BigInt(32 * this.deviceFeaturesSel)) & 0xffff_ffffn);
      case MmioRegister.QueueNumMax: return this.device.queueMaxSizes[this.queueSel] ?? 0;
      case MmioRegister.QueueReady: return setup?.ready ? 1 : 0;
      case MmioRegister.InterruptStatus:
        this.raisedSinceStatusRead = 0;
        return this.interruptStatus;
      case MmioRegister.Status: return this.status;
      // No shared memory regions: a length of all ones means "no such region".
      case MmioRegister.ShmLenLow: case MmioRegister.ShmLenHigh:
      case MmioRegister.ShmBaseLow: case MmioRegister.ShmBaseHigh:
        return 0xffff_ffff;
      case MmioRegister.ConfigGeneration: return this.configGeneration;
      default: return 0; // write-only or reserved
    }
  }

  private writeRegister(offset: number, value: number): void {
    const setup = this.queues[this.queueSel];
    switch (offset) {
      case MmioRegister.DeviceFeaturesSel: this.deviceFeaturesSel = value; return;
      case MmioRegister.DriverFeaturesSel: this.driverFeaturesSel = value; return;
      case MmioRegister.DriverFeatures: return this.writeDriverFeatures(value);
      case MmioRegister.QueueSel: this.queueSel = value; return;
      case MmioRegister.QueueReady: return this.writeQueueReady(value);
      case MmioRegister.QueueNotify: return this.notifyQueue(value);
      case MmioRegister.InterruptAck: this.interruptStatus &= ~(value & ~this.raisedSinceStatusRead); return;
      case MmioRegister.Status: return this.writeStatus(value);
      case MmioRegister.ShmSel: return;
    }
    // The remaining registers describe the selected queue; spec 4.2.2.3 lets
    // the driver change them only while the queue is not ready.
    if (setup === undefined || setup.ready) {
      this.log(MmioLogKind.RefusedWrite, `${this.device.name}: ignored write to register 0x${offset.toString(16)} (queue ${this.queueSel} ${setup ? 'is ready' : 'does not exist'})`);
      return;
    }
    switch (offset) {
      case MmioRegister.QueueNum: setup.size = value; return;
      case MmioRegister.QueueDescLow: setup.desc[0] = value; return;
      case MmioRegister.QueueDescHigh: setup.desc[1] = value; return;
      case MmioRegister.QueueDriverLow: setup.driver[0] = value; return;
      case MmioRegister.QueueDriverHigh: setup.driver[1] = value; return;
      case MmioRegister.QueueDeviceLow: setup.device[0] = value; return;
      case MmioRegister.QueueDeviceHigh: setup.device[1] = value; return;
      default:
        this.log(MmioLogKind.RefusedWrite, `${this.device.name}: ignored write to register 0x${offset.toString(16)}`);
    }
  }

  private writeDriverFeatures(value: number): void {
    if ((this.status & DeviceStatus.Driver) === 0 || (this.status & DeviceStatus.FeaturesOk) !== 0) {
      this.log(MmioLogKind.Negotiation, `${this.device.name}: driver features written outside feature negotiation`);
      return;
    }
    if (this.driverFeaturesSel > 1) return;
    const shift = BigInt(32 * this.driverFeaturesSel);
    this.driverFeatures = (this.driverFeatures & ~(0xffff_ffffn << shift)) | (BigInt(value) << shift);
  }

  private writeStatus(value: number): void {
    if (value === 0) {
      this.reset();
      return;
    }
    const wanted = value & DRIVER_STATUS_BITS;
    const added = wanted & ~this.status;
    // Spec 3.1.1: bits are only ever added, in this order; anything else is ignored.
    const inOrder = (wanted & this.status & DRIVER_STATUS_BITS) === (this.status & DRIVER_STATUS_BITS)
      && (!(added & DeviceStatus.Driver) || (wanted & DeviceStatus.Acknowledge))
      && (!(added & DeviceStatus.FeaturesOk) || (wanted & DeviceStatus.Driver))
      && (!(added & DeviceStatus.DriverOk) || (wanted & DeviceStatus.FeaturesOk));
    if (!inOrder) {
      this.log(MmioLogKind.Negotiation, `${this.device.name}: ignored status change 0x${this.status.toString(16)} -> 0x${value.toString(16)}`);
      return;
    }
    if ((added & DeviceStatus.FeaturesOk) && !this.featuresAcceptable()) {
      // Leaving FEATURES_OK clear is how the device refuses (spec 3.1.1 step 6).
      this.status |= wanted & ~DeviceStatus.FeaturesOk & ~DeviceStatus.DriverOk;
      return;
    }
    this.status |= wanted;
    if (added & DeviceStatus.DriverOk) this.activate();
  }

  private featuresAcceptable(): boolean {
    const unknown = this.driverFeatures & ~this.offeredFeatures;
    if (unknown !== 0n) {
      this.log(MmioLogKind.Negotiation, `${this.device.name}: driver accepted features it was not offered (0x${unknown.toString(16)}); FEATURES_OK refused`);
      return false;
    }
    if ((this.driverFeatures & VIRTIO_F_VERSION_1) === 0n) {
      this.log(MmioLogKind.Negotiation, `${this.device.name}: driver did not accept VIRTIO_F_VERSION_1 (legacy drivers are not supported); FEATURES_OK refused`);
      return false;
    }
    return true;
  }

  private writeQueueReady(value: number): void {
    const setup = this.queues[this.queueSel];
    if (setup === undefined) {
      this.log(MmioLogKind.RefusedWrite, `${this.device.name}: QueueReady for queue ${this.queueSel}, which does not exist`);
      return;
    }
    if ((value & 1) === 0) {
      setup.ready = false;
      setup.queue = undefined;
      return;
    }
    if (setup.ready) return;
    if ((this.status & DeviceStatus.FeaturesOk) === 0 || (this.status & DeviceStatus.DriverOk) !== 0) {
      this.fail(`queue ${this.queueSel} enabled outside queue setup (status 0x${this.status.toString(16)})`);
      return;
    }
    const max = this.device.queueMaxSizes[this.queueSel] ?? 0;
    if (setup.size > max) {
      this.fail(`queue ${this.queueSel} size ${setup.size} is larger than QueueNumMax ${max}`);
      return;
    }
    this.guard(`queue ${this.queueSel} setup`, () => {
      setup.queue = new Virtqueue(this.memory, {
        size: setup.size,
        descTable: address(setup.desc),
        availRing: address(setup.driver),
        usedRing: address(setup.device),
      }, {
        eventIdx: (this.driverFeatures & VIRTIO_F_RING_EVENT_IDX) !== 0n,
        indirect: (this.driverFeatures & VIRTIO_F_RING_INDIRECT_DESC) !== 0n,
        traceLabel: `${this.device.name} queue ${this.queueSel}`,
      });
      setup.ready = true;
    });
  }

  private activate(): void {
    const context = {
      live: true,
      memory: this.memory,
      queues: this.queues.map((q) => q.queue),
      features: this.driverFeatures,
      signalUsed: () => {
        if (context.live) this.raiseInterrupt(MmioInterrupt.UsedBuffer);
      },
      signalConfigChange: () => {
        if (!context.live) return;
        this.configGeneration = (this.configGeneration + 1) >>> 0;
        this.raiseInterrupt(MmioInterrupt.ConfigChange);
      },
      fail: (reason: string) => {
        if (context.live) this.fail(reason);
      },
    };
    this.context = context;
    this.guard('activation', () => this.device.activate(context));
  }

  /** The driver wrote 0 to Status: the device forgets everything, and so do we. */
  private reset(): void {
    this.guard('reset', () => this.device.reset());
    this.resetTransport();
  }

  private resetTransport(): void {
    if (this.context) this.context.live = false;
    this.context = undefined;
    this.status = 0;
    this.deviceFeaturesSel = 0;
    this.driverFeaturesSel = 0;
    this.driverFeatures = 0n;
    this.queueSel = 0;
    this.interruptStatus = 0;
    this.raisedSinceStatusRead = 0;
    this.queues = this.device.queueMaxSizes.map((max) => ({
      size: max, ready: false, desc: [0, 0], driver: [0, 0], device: [0, 0], queue: undefined,
    }));
  }

  /** Spec 2.1.2: set DEVICE_NEEDS_RESET and tell the driver through a config-change interrupt. */
  private fail(reason: string): void {
    this.log(MmioLogKind.DeviceFailure, `${this.device.name}: ${reason}; the device needs a reset`);
    if (this.status & DeviceStatus.DeviceNeedsReset) return;
    this.status |= DeviceStatus.DeviceNeedsReset;
    this.raiseInterrupt(MmioInterrupt.ConfigChange);
  }

  private raiseInterrupt(cause: number): void {
    if (trace.virtio) trace.line('virtio', `${this.device.name} interrupt: ${cause === MmioInterrupt.UsedBuffer ? 'used buffer' : 'config change'}`);
    this.interruptStatus |= cause;
    this.raisedSinceStatusRead |= cause;
    this.interrupt.trigger();
  }

  /** Runs device code; any error (guest-caused or a bug) fails the device instead of the VMM. */
  private guard(what: string, action: () => void): void {
    try {
      action();
    } catch (error) {
      this.fail(`${what}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

/** Joins a Low/High register pair (values past 2^53 are refused by the queue's range check). */
function address([low, high]: [number, number]): number {
  return high * 2 ** 32 + low;
}
