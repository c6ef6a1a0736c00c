// Releases what a VM acquired (fds, mappings, sockets, devices), in reverse
// order, exactly once, even when building the VM fails halfway: each step
// pushes its own release right after it succeeds.
export class CleanupStack {
  private readonly releases: Array<{ what: string; release: () => void | Promise<void> }> = [];

  push(what: string, release: () => void | Promise<void>): void {
    this.releases.push({ what, release });
  }

  /** Runs every release, last first; collects failures instead of stopping at the first. */
  async releaseAll(): Promise<Error[]> {
    const failures: Error[] = [];
    while (this.releases.length > 0) {
      const { what, release } = this.releases.pop()!;
      try {
        await release();
      } catch (error) {
        failures.push(new Error(`closing ${what}: ${(error as Error).message ?? error}`));
      }
    }
    return failures;
  }
}
