// Errors raised while preparing an x86_64 guest to boot. Each says what was
// wrong and, when the user can fix it, what to change; both are the user's
// to fix, so both are ConfigErrors (one line, exit status 2).
import { ConfigError } from '../../config/types.js';

/** The kernel file cannot be booted: wrong format, corrupt, or does not fit in RAM. */
export class KernelImageError extends ConfigError {
  constructor(message: string) {
    super(message);
    this.name = 'KernelImageError';
  }
}

/** The VM configuration cannot be laid out in guest memory (RAM size, cmdline, initramfs, CPUs). */
export class BootConfigError extends ConfigError {
  constructor(message: string) {
    super(message);
    this.name = 'BootConfigError';
  }
}

