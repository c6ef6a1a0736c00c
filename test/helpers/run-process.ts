// Runs a program to completion and collects what it printed, with a time
// limit that kills it (and fails the test) instead of hanging the suite.
import { spawn, type SpawnOptions } from 'node:child_process';

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * A failed run in a few lines, for an assertion's message: the exit status,
 * all of stderr and the end of stdout (a guest's verdict and last words are
 * at the end of its console output; its first 3000 characters are boot noise).
 */
export function describeRun(result: ProcessResult, stdoutTailChars = 3000): string {
  const ending = result.signal ? `signal ${result.signal}` : `code ${result.code}`;
  return `${ending}, timed out ${result.timedOut}; stderr:\n${result.stderr}\nstdout (end):\n${result.stdout.slice(-stdoutTailChars)}`;
}

export function runProcess(command: string, args: string[], options: SpawnOptions & { timeoutMs?: number; input?: string } = {}): Promise<ProcessResult> {
  const { timeoutMs = 120_000, input, ...spawnOptions } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...spawnOptions, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.on('data', (chunk) => { stdout += chunk; });
    child.stderr!.on('data', (chunk) => { stderr += chunk; });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
    child.stdin!.end(input ?? '');
  });
}
