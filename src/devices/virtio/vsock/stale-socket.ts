// Making a Unix socket path free for a new listener, the way tsvmm treats
// its own vsock socket and the library treats a `<socket>_<port>` listener:
// nothing there is fine; a socket file nobody listens on (left by a process
// that died) is removed; a live socket, or a file that is not a socket, is
// refused. Each caller words the refusal for its own user.
import { lstatSync, unlinkSync } from 'node:fs';
import net from 'node:net';

/** Why a path could not be made free; `detail` is the system's own words. */
export type StaleSocketProblem =
  | { kind: 'uninspectable'; detail: string }
  | { kind: 'not-a-socket' }
  | { kind: 'listened-on' }
  | { kind: 'unprobeable'; detail: string }
  | { kind: 'unremovable'; detail: string };

/** The errno code of a Node system error (e.g. "ENOENT"), if it has one. */
export function errnoCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/** Resolves true when a process accepts connections at `path`. */
function isListenedOn(path: string, refuse: (problem: StaleSocketProblem) => Error): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = net.createConnection({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', (error) => {
      const code = errnoCode(error);
      if (code === 'ECONNREFUSED' || code === 'ENOENT') resolve(false);
      else if (code === 'EAGAIN') resolve(true); // a live listener with a full backlog
      else reject(refuse({ kind: 'unprobeable', detail: error.message }));
    });
  });
}

/** Makes `path` free for a listener, or throws what `refuse` makes of the problem. */
export async function clearStaleSocket(path: string, refuse: (problem: StaleSocketProblem) => Error): Promise<void> {
  let stats;
  try {
    stats = lstatSync(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return;
    throw refuse({ kind: 'uninspectable', detail: (error as Error).message });
  }
  if (!stats.isSocket()) throw refuse({ kind: 'not-a-socket' });
  if (await isListenedOn(path, refuse)) throw refuse({ kind: 'listened-on' });
  try {
    unlinkSync(path);
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw refuse({ kind: 'unremovable', detail: (error as Error).message });
  }
}
