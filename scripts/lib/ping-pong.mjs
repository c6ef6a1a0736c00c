// 64-byte round trips over any byte stream with `on('data')` and `write()`
// (a socket, or a child process's stdio): the benchmarks' latency probe.

const MESSAGE_BYTES = 64;

/** Sends 64 bytes, waits for 64 back, `rounds` times; resolves with the sorted round-trip times in ns. */
export function pingPong({ readable, writable }, rounds) {
  const message = Buffer.alloc(MESSAGE_BYTES, 7);
  const times = [];
  let echoed = 0;
  let start = 0n;
  return new Promise((done) => {
    readable.on('data', (d) => {
      echoed += d.length;
      if (echoed < message.length) return;
      echoed -= message.length;
      times.push(Number(process.hrtime.bigint() - start));
      if (times.length === rounds) return done(times.sort((a, b) => a - b));
      start = process.hrtime.bigint();
      writable.write(message);
    });
    start = process.hrtime.bigint();
    writable.write(message);
  });
}
