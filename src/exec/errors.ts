// What can go wrong running a command through the guest's exec agent. None
// of it is a mistake in the caller's configuration: the command ran too
// long, the caller gave up, the connection or the agent failed. So they
// share a base class, ExecError, that callers can catch at once, and
// subclasses that say which. A command that fails is not an error at all:
// its status says so.

/** A command did not run to its end for the reason a subclass names. */
export class ExecError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ExecError';
  }
}

/** What a stopped command had done: its output so far, and its status if the agent reported one. */
export interface PartialExecOutput {
  /** The status the agent reported after the kill (137 for SIGKILL), or undefined when it did not in time. */
  readonly status: number | undefined;
  /** What the command wrote to its stdout before it was stopped. */
  readonly stdout: Buffer;
  /** What the command wrote to its stderr before it was stopped. */
  readonly stderr: Buffer;
}

/** How much of a command a message quotes: a script can be long. */
const MAX_COMMAND_SHOWN = 60;

/** Names the command in a message, quoted and shortened. */
export function describeCommand(command: string): string {
  const shown = command.length > MAX_COMMAND_SHOWN ? `${command.slice(0, MAX_COMMAND_SHOWN)}...` : command;
  return `exec of ${JSON.stringify(shown)}`;
}

/** The command ran past `timeoutMs`; its process group was killed. */
export class ExecTimeoutError extends ExecError implements PartialExecOutput {
  /** The caller's `timeoutMs`: how long the command was given, in milliseconds. */
  readonly timeoutMs: number;
  readonly status: number | undefined;
  readonly stdout: Buffer;
  readonly stderr: Buffer;

  constructor(command: string, timeoutMs: number, output: PartialExecOutput) {
    super(`${describeCommand(command)} timed out after ${timeoutMs} ms; it was killed`);
    this.name = 'ExecTimeoutError';
    this.timeoutMs = timeoutMs;
    ({ status: this.status, stdout: this.stdout, stderr: this.stderr } = output);
  }
}

/**
 * The caller's AbortSignal fired; the command's process group was killed.
 * Its `name` is 'AbortError', as for every aborted operation in Node and the
 * web platform (and VsockAbortError), and `cause` is the signal's reason.
 */
export class ExecAbortError extends ExecError implements PartialExecOutput {
  readonly status: number | undefined;
  readonly stdout: Buffer;
  readonly stderr: Buffer;

  constructor(command: string, reason: unknown, output: PartialExecOutput) {
    super(`${describeCommand(command)} aborted; it was killed`, { cause: reason });
    this.name = 'AbortError';
    ({ status: this.status, stdout: this.stdout, stderr: this.stderr } = output);
  }
}

/**
 * The connection to the agent ended or failed before the command's exit
 * status came: the VM stopped, the agent died, the stream broke. The agent
 * kills the command when its connection goes away.
 */
export class ExecConnectionError extends ExecError {
  constructor(command: string, reason: string, options?: ErrorOptions) {
    super(`${describeCommand(command)} failed: ${reason}`, options);
    this.name = 'ExecConnectionError';
  }
}

/** The agent refused the request (its ERROR frame): it could not start the shell, or found the request malformed. */
export class ExecAgentError extends ExecError {
  /** The agent's own words. */
  readonly agentMessage: string;

  constructor(command: string, agentMessage: string) {
    super(`${describeCommand(command)} refused by the guest's agent: ${agentMessage}`);
    this.name = 'ExecAgentError';
    this.agentMessage = agentMessage;
  }
}

/** The peer sent something that is not the exec protocol (is it tsvmm-agent on that port?). */
export class ExecProtocolError extends ExecError {
  constructor(reason: string) {
    super(`not the tsvmm-agent exec protocol: ${reason}`);
    this.name = 'ExecProtocolError';
  }
}

/**
 * No agent accepted a connection on its vsock port before the deadline: the
 * guest is still booting, or its image has no tsvmm-agent (docs/exec-agent.md
 * says how to add one).
 */
export class ExecNoAgentError extends ExecError {
  constructor(command: string, agentPort: number, waitedMs: number, options?: ErrorOptions) {
    super(`${describeCommand(command)}: no exec agent answered on vsock port ${agentPort} within ${waitedMs} ms ` +
      '(is tsvmm-agent started by the guest\'s init? see docs/exec-agent.md)', options);
    this.name = 'ExecNoAgentError';
  }
}
