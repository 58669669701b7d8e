/**
 * Values the status pages serve from memory and re-read in the background (stale-while-
 * revalidate): a view waits only for the very first read of a value, never for a top-up.
 * FerretDB 1.x serves only a lone `_id` equality from an index and decodes every document of
 * the collection for any other filter, so a read in a view's path would cost seconds.
 */
export class Refreshed<T> {
  private value: T | undefined;
  /** When the read that produced `value` started. */
  private startedAt = 0;
  private reading: Promise<T> | undefined;

  constructor(
    private readonly read: () => Promise<T>,
    private readonly maxAgeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The value held, re-read in the background when older than `maxAgeMs`; the first call waits for the read. */
  async get(): Promise<T> {
    if (this.value !== undefined && this.now() - this.startedAt > this.maxAgeMs) void this.refresh().catch(() => {});
    return this.value ?? this.refresh();
  }

  /**
   * Reads now, never joining a read already under way (it may have started before the caller's
   * own write), and keeps what it read unless a read started later has already landed.
   */
  async fresh(): Promise<T> {
    const startedAt = this.now();
    const v = await this.read();
    this.keep(v, startedAt);
    return v;
  }

  private refresh(): Promise<T> {
    const startedAt = this.now();
    this.reading ??= this.read()
      .then((v) => {
        this.keep(v, startedAt);
        return v;
      })
      .finally(() => (this.reading = undefined));
    return this.reading;
  }

  private keep(v: T, startedAt: number): void {
    if (this.value !== undefined && startedAt < this.startedAt) return;
    this.value = v;
    this.startedAt = startedAt;
  }
}

/** One Refreshed value per key (a node, an operator), the least recently used dropped beyond `maxKeys`. */
export class RefreshedByKey<K, T> {
  private readonly values = new Map<K, Refreshed<T>>();

  constructor(
    private readonly read: (key: K) => Promise<T>,
    private readonly maxAgeMs: number,
    private readonly maxKeys: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(key: K): Promise<T> {
    return this.entry(key).get();
  }

  fresh(key: K): Promise<T> {
    return this.entry(key).fresh();
  }

  private entry(key: K): Refreshed<T> {
    let entry = this.values.get(key);
    if (entry) {
      // Re-inserted: a Map iterates in insertion order, so the first key is the least recently used.
      this.values.delete(key);
    } else {
      entry = new Refreshed(() => this.read(key), this.maxAgeMs, this.now);
      if (this.values.size >= this.maxKeys) this.values.delete(this.values.keys().next().value!);
    }
    this.values.set(key, entry);
    return entry;
  }
}
