/**
 * An in-memory view of MongoDB re-read on a timer, for reads on every request or poll where a
 * database round trip each time would cost more than a few seconds of lag.
 */
export abstract class RefreshedView {
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;

  /** Reads everything once; replaces the view only when the read succeeds. */
  protected abstract read(): Promise<void>;

  /** Whether `start` has run (and `stop` not): until then the view is not kept current. */
  protected get started(): boolean {
    return this.timer !== undefined;
  }

  /** Reads once, then every `refreshMs`; a failed read keeps the last view (MongoDB away must not unbar a node). */
  async start(refreshMs: number): Promise<this> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh().catch(() => {}), refreshMs);
    this.timer.unref();
    return this;
  }

  /** Re-reads now; concurrent callers share one read. */
  refresh(): Promise<void> {
    this.refreshing ??= this.read().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
