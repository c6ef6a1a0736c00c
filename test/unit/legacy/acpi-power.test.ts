import { beforeEach, describe, expect, it } from 'vitest';
import { Bus } from '../../../src/bus/bus.js';
import { AcpiPower } from '../../../src/devices/legacy/acpi-power.js';
import { ACPI_POWER_PORTS } from '../../../src/devices/legacy/pc-ports.js';

const SLEEP_CONTROL = 0x600;
const SLEEP_STATUS = 0x601;
const RESET = 0x602;
const WAK_STS = 0x80;
const SLP_EN = 0x20;
const slpTyp = (type: number) => type << 2;

let powerOffs: number;
let resets: number;
let bus: Bus;

beforeEach(() => {
  powerOffs = 0;
  resets = 0;
  bus = new Bus('pio', 'pio');
  const device = new AcpiPower({ onPowerOff: () => powerOffs++, onReset: () => resets++ });
  bus.register(ACPI_POWER_PORTS.base, ACPI_POWER_PORTS.size, device, 'ACPI power');
});

const inb = (port: number) => {
  const data = new Uint8Array(1);
  bus.read(port, data);
  return data[0]!;
};
const outb = (port: number, value: number) => bus.write(port, Uint8Array.of(value));

describe('AcpiPower', () => {
  it('powers off on Linux\'s S5 sequence (acpi_hw_extended_sleep) and leaves WAK_STS clear', () => {
    outb(SLEEP_STATUS, WAK_STS); // clear any old wake
    expect(powerOffs).toBe(0);
    outb(SLEEP_CONTROL, slpTyp(5) | SLP_EN); // 0x34
    expect(powerOffs).toBe(1);
    // The guest now polls for WAK_STS; the machine is off, so it never comes.
    expect(inb(SLEEP_STATUS) & WAK_STS).toBe(0);
    expect(resets).toBe(0);
  });

  it('needs SLP_EN: writing the sleep type alone does nothing', () => {
    outb(SLEEP_CONTROL, slpTyp(5));
    expect(powerOffs).toBe(0);
    expect(inb(SLEEP_STATUS)).toBe(0);
  });

  it('wakes a guest at once from a sleep state it was not offered, instead of leaving it spinning', () => {
    outb(SLEEP_CONTROL, slpTyp(3) | SLP_EN);
    expect(powerOffs).toBe(0);
    expect(inb(SLEEP_STATUS)).toBe(WAK_STS);
    outb(SLEEP_STATUS, 0x00); // writing 0 leaves it
    expect(inb(SLEEP_STATUS)).toBe(WAK_STS);
    outb(SLEEP_STATUS, WAK_STS); // write 1 to clear
    expect(inb(SLEEP_STATUS)).toBe(0);
  });

  it('resets on the FADT\'s RESET_VALUE at the reset register only', () => {
    outb(RESET, 0x02);
    expect(resets).toBe(0);
    outb(SLEEP_CONTROL, 0x01); // the reset value elsewhere is not a reset
    expect(resets).toBe(0);
    outb(RESET, 0x01);
    expect(resets).toBe(1);
    expect(powerOffs).toBe(0);
  });

  it('treats a wider access as one byte per register', () => {
    // A 2-byte write at the control register also writes the status register.
    outb(SLEEP_CONTROL, slpTyp(1) | SLP_EN); // sets WAK_STS
    bus.write(SLEEP_CONTROL, Uint8Array.of(0x00, WAK_STS));
    expect(inb(SLEEP_STATUS)).toBe(0);
    const data = new Uint8Array(3);
    bus.read(SLEEP_CONTROL, data);
    expect([...data]).toEqual([0, 0, 0]);
  });
});
