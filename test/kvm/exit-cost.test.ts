// Measures (prints, does not assert) what a port I/O exit costs through the
// vCPU worker: posted writes, reads answered by the main thread, and reads
// answered in the worker from shared bytes. The guest writes port 0x3ff
// between phases; the main thread timestamps those marker writes.

import { describe, expect, it } from 'vitest';
import { Bus, BusDevice } from '../../src/bus/bus.js';
import { VcpuSet } from '../../src/vcpu/vcpu-set.js';
import { createTinyGuest, hasKvm } from './tiny-guest.js';

const ROUNDS = 2000;

const code = [
  0x66, 0xba, 0xff, 0x03, 0xee, //             mov dx, 0x3ff; out dx, al        (marker 0)
  0xb9, 0xd0, 0x07, 0, 0, //                   mov ecx, 2000
  0xff, 0xc9, 0x75, 0xfc, //                   1: dec ecx; jnz 1b               (empty loop)
  0xee, //                                     out dx, al                       (marker 1)
  0x66, 0xba, 0xf8, 0x03, 0xb9, 0xd0, 0x07, 0, 0, // mov dx, 0x3f8; mov ecx, 2000
  0xee, 0xff, 0xc9, 0x75, 0xfb, //             2: out dx, al; dec ecx; jnz 2b   (posted writes)
  0x66, 0xba, 0xff, 0x03, 0xee, //             marker 2
  0x66, 0xba, 0xf9, 0x03, 0xb9, 0xd0, 0x07, 0, 0, // mov dx, 0x3f9; mov ecx, 2000
  0xec, 0xff, 0xc9, 0x75, 0xfb, //             3: in al, dx; dec ecx; jnz 3b    (main-thread reads)
  0x66, 0xba, 0xff, 0x03, 0xee, //             marker 3
  0x66, 0xba, 0xfd, 0x03, 0xb9, 0xd0, 0x07, 0, 0, // mov dx, 0x3fd; mov ecx, 2000
  0xec, 0xff, 0xc9, 0x75, 0xfb, //             4: in al, dx; dec ecx; jnz 4b    (worker-answered reads)
  0x66, 0xba, 0xff, 0x03, 0xee, //             marker 4
  0xf4, //                                     hlt
];

describe.skipIf(!hasKvm)('port I/O exit cost', () => {
  it('prints the cost per exit', async () => {
    const guest = createTinyGuest(code);
    const markers: number[] = [];
    let writes = 0;
    let reads = 0;
    const device: BusDevice = {
      read: (_offset, data) => { reads++; data.fill(0x60); },
      write: (offset) => { if (offset === 7) markers.push(performance.now()); else writes++; },
    };
    const pio = new Bus('pio', 'pio');
    pio.register(0x3f8, 8, device, 'timing device');
    const shared = new Uint8Array(new SharedArrayBuffer(1));
    const set = new VcpuSet({ buses: { pio, mmio: new Bus('mmio', 'mmio') } });
    const thread = set.add({
      vcpu: guest.vcpu,
      sharedBytes: shared, sharedPortValues: [{ port: 0x3fd, sharedByteIndex: 0 }],
    });
    thread.start();
    const exit = await thread.finished;
    guest.close();

    expect(exit?.kind).toBe('halt');
    expect(markers).toHaveLength(5);
    expect([writes, reads]).toEqual([ROUNDS, ROUNDS]);
    const us = (phase: number) => ((markers[phase + 1]! - markers[phase]!) * 1000) / ROUNDS;
    const loop = us(0);
    console.log(
      `per iteration: empty guest loop ${loop.toFixed(2)} us (CPL0 emulation on PVM); ` +
      `OUT posted ${us(1).toFixed(2)} us; IN answered by main thread ${us(2).toFixed(2)} us; ` +
      `IN answered in worker ${us(3).toFixed(2)} us`);
  });
});
