#!/usr/bin/env node
// `npm run demo`: boots the default guest with tsvmm and shows vsock working
// in both directions, with real socat on both sides, exactly as Cloud
// Hypervisor's vsock document describes it. Each step prints the command a
// user would type, then what happened. Where this host's KVM cannot boot
// Linux (PVM here, or no KVM), it runs inside the nested sandbox and says so.
import { $, fs, path, os, sleep } from 'zx';
import { fileURLToPath } from 'node:url';
import { step } from './lib/progress.mjs';
import { runWhereKvmWorks } from './lib/where-kvm-works.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// The guest says hello to the host on port 5000, then serves port 1234,
// answering what the host sends in upper case.
const guestScript = [
  "echo 'Hello from guest!' | socat - VSOCK-CONNECT:2:5000",
  "socat VSOCK-LISTEN:1234 EXEC:'tr a-z A-Z'",
].join(' && ');

/** Prints what the guest writes on its serial console, as it comes. */
function showGuestConsole(processPromise) {
  let partial = '';
  const print = (chunk) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop();
    for (const line of lines) console.log(`    guest | ${line.trimEnd()}`);
  };
  processPromise.stdout.on('data', print);
  processPromise.stderr.on('data', print);
}

/** Kills a zx process unless it has already ended (zx throws then). */
function stop(processPromise) {
  if (!processPromise.isSettled()) processPromise.kill();
}

/** Rejects with `message` when `promise` takes longer than `ms`. */
function withTimeout(promise, ms, message) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(message)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function demo() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvmm-demo-'));
  const socket = path.join(dir, 'ch.vsock');
  let vm;
  let failed = false;
  try {
    step(`host listens for the guest:  socat -u UNIX-LISTEN:${socket}_5000 -`);
    const listener = $`socat -u UNIX-LISTEN:${socket}_5000 -`.quiet().nothrow();

    const args = ['--vsock', `cid=3,socket=${socket}`, '--cmdline', `quiet -- ${guestScript}`];
    step(`boot the default guest:  tsvmm ${args.map((a) => (a.includes(' ') ? `"${a}"` : a)).join(' ')}`);
    const started = Date.now();
    vm = $`node ${path.join(root, 'dist/cli.js')} ${args}`.nothrow();
    showGuestConsole(vm);

    const greeting = (await withTimeout(listener, 60_000, 'the guest did not connect to the host within 60 s')).stdout.trim();
    console.log(`    host received: ${greeting}   (${Date.now() - started} ms after start)`);
    if (greeting !== 'Hello from guest!') throw new Error(`expected "Hello from guest!", got "${greeting}"`);

    step(`host connects to the guest:  printf 'CONNECT 1234\\nhello from host\\n' | socat - UNIX-CONNECT:${socket}`);
    let reply = '';
    for (let attempt = 0; attempt < 50 && !reply.includes('HELLO'); attempt++) {
      // The guest may not be listening yet: the connection is then closed; try again.
      reply = (await $`printf 'CONNECT 1234\nhello from host\n' | socat -t 5 - UNIX-CONNECT:${socket}`.quiet().nothrow()).stdout;
      if (!reply.includes('HELLO')) await sleep(200);
    }
    for (const line of reply.trim().split('\n')) console.log(`    host received: ${line}`);
    if (!/^OK \d+\n/.test(reply) || !reply.includes('HELLO FROM HOST')) throw new Error('no answer from the guest on port 1234');

    const result = await withTimeout(vm, 30_000, 'tsvmm did not exit within 30 s of the guest finishing');
    if (result.exitCode !== 0) throw new Error(`tsvmm exited with status ${result.exitCode}`);
    step('vsock works both ways; the guest has shut down and tsvmm exited 0');
  } catch (error) {
    failed = true;
    console.error(`demo: ${error.message ?? error}`);
  } finally {
    if (vm) stop(vm);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return failed ? 1 : 0;
}

process.exitCode = await runWhereKvmWorks(import.meta.url, demo);
