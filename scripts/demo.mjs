#!/usr/bin/env node
// `npm run demo`: boots the default guest with tsvmm and shows vsock working
// in both directions, with real socat on both sides, exactly as Cloud
// Hypervisor's vsock document describes it. Where this host's KVM cannot
// boot Linux (PVM here, or no KVM), it runs inside the nested sandbox and
// says so.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { buildGuestImages } from './build-guest-images.mjs';
import { hostKvmKind, insideSandbox } from './lib/host-kvm.mjs';
import { step } from './lib/progress.mjs';
import { runInSandbox } from './sandbox.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const inner = join(root, 'scripts', 'demo-vsock.mjs');
const kvm = hostKvmKind();

if (kvm === 'hardware' || insideSandbox) {
  await buildGuestImages({ sandbox: false, quiet: true });
  const child = spawn(process.execPath, [inner], { stdio: 'inherit' });
  child.on('exit', (code) => { process.exitCode = code ?? 1; });
} else {
  step('guest images');
  await buildGuestImages({ sandbox: true });
  step(`this host's /dev/kvm is ${kvm === 'pvm' ? 'PVM, which cannot boot a stock Linux kernel' : 'missing'}: ` +
    'running the demo inside the nested sandbox (npm run sandbox), where KVM works');
  process.exitCode = await runInSandbox(`node ${inner}`, { cwd: root });
}
