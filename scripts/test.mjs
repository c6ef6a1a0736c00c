#!/usr/bin/env node
// `npm test`: the whole test suite, on any machine, from a fresh clone.
//
//   1. builds the guest images (cached outside the clone: instant the second time);
//   2. runs the unit, device and direct-KVM suites on this host (the
//      direct-KVM one needs a /dev/kvm: PVM's will do for its tiny guests);
//   3. runs the end-to-end suite with real Linux guests: directly where the
//      host has hardware KVM, otherwise inside the nested sandbox, booted once.
//
// Arguments are passed to vitest (e.g. a file filter). The last line is a
// summary `tsvmm: N passed, N failed, N skipped`; the exit status is non-zero
// when anything failed.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildGuestImages } from './build-guest-images.mjs';
import { hostKvmKind, insideSandbox } from './lib/host-kvm.mjs';
import { step } from './lib/progress.mjs';
import { SANDBOX_DIED, runInSandbox, shellCommand } from './sandbox.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const resultsDir = join(root, 'node_modules', '.tsvmm-test-results');
const extraArgs = process.argv.slice(2);

function vitestArgs(projects, resultFile) {
  return ['vitest', 'run', '--config', 'test/vitest.config.ts',
    ...projects.flatMap((p) => ['--project', p]),
    '--reporter=default', '--reporter=json', `--outputFile.json=${resultFile}`, ...extraArgs];
}

function runHere(args) {
  return new Promise((done) => {
    const child = spawn('npx', args, { cwd: root, stdio: 'inherit' });
    child.on('exit', (code, signal) => done(code ?? (signal ? 1 : 0)));
  });
}

/** Counts from vitest's JSON report; a missing report (crash) counts as one failure. */
function countResults(file, label) {
  if (!existsSync(file)) {
    console.error(`test: the ${label} run wrote no report: it crashed or was stopped`);
    return { passed: 0, failed: 1, skipped: 0 };
  }
  const report = JSON.parse(readFileSync(file, 'utf8'));
  return {
    passed: report.numPassedTests,
    failed: report.numFailedTests + (report.success === false && report.numFailedTests === 0 ? 1 : 0),
    skipped: report.numPendingTests + report.numTodoTests,
  };
}

/**
 * Every failed test again, a few lines each, just above the summary: CI
 * shows the tail of the output, and the failures must be in it.
 */
function printFailures(files) {
  const failures = files.filter((file) => existsSync(file)).flatMap((file) => {
    const report = JSON.parse(readFileSync(file, 'utf8'));
    return report.testResults.flatMap((suite) => suite.assertionResults
      .filter((test) => test.status === 'failed')
      .map((test) => ({ file: relative(root, suite.name), name: test.fullName, message: test.failureMessages?.[0] ?? '' })));
  });
  if (failures.length === 0) return;
  console.log(`\nfailed tests (${failures.length}):`);
  for (const { file, name, message } of failures) {
    const lines = message.replace(/\x1b\[[0-9;]*m/g, '').split('\n').map((line) => line.trim()).filter(Boolean);
    console.log(`- ${file} > ${name}\n    ${lines.slice(0, 4).map((line) => line.slice(0, 240)).join('\n    ')}`);
  }
}

rmSync(resultsDir, { recursive: true, force: true });
mkdirSync(resultsDir, { recursive: true });
const kvm = hostKvmKind();
const e2eInSandbox = kvm !== 'hardware' && !insideSandbox;
// Tiny hand-made guests run on this host's /dev/kvm (PVM's too); without
// one they skip. (They were written for PVM: inside the sandbox's nested
// KVM most of them fail, which is still to be looked into.)

step('guest images');
await buildGuestImages({ sandbox: e2eInSandbox });

const totals = { passed: 0, failed: 0, skipped: 0 };
const add = (r) => { for (const k of Object.keys(totals)) totals[k] += r[k]; };
let exitCodes = 0;

step(`unit, device and direct-KVM tests on this host (/dev/kvm: ${kvm})`);
const hostFile = join(resultsDir, 'host.json');
exitCodes |= await runHere(vitestArgs(['unit', 'kvm', 'sandbox'], hostFile));
add(countResults(hostFile, 'host'));

const e2eFile = join(resultsDir, 'e2e.json');
/** The end-to-end suite's bound inside the sandbox: well past its usual length, so a hung sandbox fails long before CI's limit. */
const E2E_SANDBOX_BOUND_SECONDS = 45 * 60;
if (e2eInSandbox) {
  step(`end-to-end tests inside the nested sandbox: this host's /dev/kvm is ${kvm === 'pvm' ? 'PVM, which cannot boot a stock Linux kernel' : 'missing'}`);
  // Then the sandbox kernel's own complaints, if any: when guests die under
  // both VMMs, the nested KVM's warnings are the evidence (issue 12). Guests
  // probing AMD performance-counter MSRs that KVM ignores are no news.
  const command = `${shellCommand(['npx', ...vitestArgs(['e2e'], e2eFile)])}; status=$?; ` +
    `dmesg | grep -iE 'kvm|svm|warn|bug|oops|fault' | grep -vE 'Unhandled (WR|RD)MSR' | tail -n 30 | sed 's/^/sandbox kernel: /'; exit $status`;
  // Bounded, so that a hung sandbox fails the run long before CI's own limit.
  let status = await runInSandbox(command, { cwd: root, timeoutSeconds: E2E_SANDBOX_BOUND_SECONDS });
  if (status === SANDBOX_DIED) {
    // The L1 machine itself went down (seen once under heavy host load) and
    // reported no status: that says nothing about the tests. Once more; a
    // test failure is never retried, since it reports a status.
    console.error('test: the sandbox machine died without reporting a status (not a test result); running the end-to-end suite once more');
    rmSync(e2eFile, { force: true });
    status = await runInSandbox(command, { cwd: root, timeoutSeconds: E2E_SANDBOX_BOUND_SECONDS });
  }
  exitCodes |= status;
} else {
  step('end-to-end tests on this host\'s KVM');
  exitCodes |= await runHere(vitestArgs(['e2e'], e2eFile));
}
add(countResults(e2eFile, 'end-to-end'));

printFailures([hostFile, e2eFile]);
if (exitCodes !== 0 && totals.failed === 0) totals.failed = 1;
console.log(`\ntsvmm: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exitCode = totals.failed > 0 ? 1 : 0;
