// 64-byte round trips over any byte stream with `on('data')` and `write()`
// (a socket, or a child process's stdio): the benchmarks' latency probe.

const MESSAGE_BYTES = 64;

/**
 * Sends 64 bytes, waits for 64 back, `rounds` times; resolves with the
 * sorted round-trip times in ns. Fails when the stream ends first, or when
 * one round trip takes longer than `stallMs`: a lost echo must not hang a
 * benchmark, and it is worth knowing about.
 */
export function pingPong({ readable, writable }, rounds, { stallMs = 60_000 } = {}) {
  const message = Buffer.alloc(MESSAGE_BYTES, 7);
  const times = [];
  let echoed = 0;
  let start = 0n;
  let timer;
  return new Promise((done, fail) => {
    const send = () => {
      clearTimeout(timer);
      timer = setTimeout(() => fail(new Error(`round trip ${times.length + 1} of ${rounds}: no echo within ${stallMs / 1000} s`)), stallMs);
      start = process.hrtime.bigint();
      writable.write(message);
    };
    readable.on('data', (d) => {
      echoed += d.length;
      if (echoed < message.length) return;
      echoed -= message.length;
      times.push(Number(process.hrtime.bigint() - start));
      if (times.length < rounds) return send();
      clearTimeout(timer);
      done(times.sort((a, b) => a - b));
    });
    readable.on('end', () => {
      clearTimeout(timer);
      fail(new Error(`round trip ${times.length + 1} of ${rounds}: the stream ended`));
    });
    send();
  });
}
