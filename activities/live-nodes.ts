/**
 * An in-memory view of the nodes' heartbeats, kept current by watching the NATS key-value
 * bucket. KV watchers are not told when an entry expires by TTL, so entries also age out here
 * by local receive time (a node's own clock is not trusted).
 */
import type { KV } from '@nats-io/kv';
import { heartbeatIntervalMs, heartbeatSchema, heartbeatTtlMs, type Heartbeat } from '../domain/heartbeat.ts';

export interface LiveNode {
  heartbeat: Heartbeat;
  receivedAt: number;
}

export class LiveNodes {
  private readonly nodes = new Map<string, LiveNode>();
  private stopped = false;
  private stopWatch: (() => void) | undefined;
  private readonly ready: Promise<void>;
  private markReady!: () => void;
  rejected = 0;
  /** Watches that failed or ended and were started again (NATS or JetStream away, slow or restarted). */
  rewatches = 0;
  /** Why the last watch failed, if one did. */
  watchFailure: unknown;
  private accept: (nodeId: string) => boolean = () => true;

  constructor(
    private readonly kv: KV,
    private readonly now: () => number = Date.now,
    private readonly retryMs = 1_000,
  ) {
    this.ready = new Promise<void>((r) => (this.markReady = r));
    // The replay of the bucket's current entries ends with the entry whose `delta` is 0; an
    // empty bucket sends nothing, so after one heartbeat interval the view is complete anyway.
    const fallback = setTimeout(() => this.markReady(), heartbeatIntervalMs + 1_000);
    fallback.unref();
    void this.keepWatching().finally(() => clearTimeout(fallback));
  }

  /**
   * Watches the bucket until stopped. A watch that cannot start (JetStream not answering yet)
   * or that ends (NATS restarted, a server that hung) is started again: this view is what the
   * router and the gateway route by, and a process must neither crash nor route by a view that
   * stopped moving. Entries seen before stay and age out by receive time meanwhile.
   */
  private async keepWatching(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.watchOnce();
      } catch (err) {
        // Tried again below.
        this.watchFailure = err;
      }
      if (this.stopped) return;
      this.rewatches++;
      await new Promise((r) => setTimeout(r, this.retryMs).unref());
    }
  }

  private async watchOnce(): Promise<void> {
    const watcher = await this.kv.watch();
    if (this.stopped) return watcher.stop();
    this.stopWatch = () => watcher.stop();
    // The replayed entry with delta 0 is flagged `isUpdate` by the library (it counts the last
    // replayed entry as the first update), so `delta` alone decides.
    if ((await this.kv.status()).values === 0) this.markReady();
    for await (const entry of watcher) {
      if (entry.delta === 0) this.markReady();
      if (entry.operation !== 'PUT') {
        this.nodes.delete(entry.key);
        continue;
      }
      // Nodes are untrusted: an entry that does not parse, or claims another node's key, is ignored.
      const parsed = heartbeatSchema.safeParse(entry.json());
      if (!parsed.success || parsed.data.nodeId !== entry.key) {
        this.rejected++;
        continue;
      }
      this.nodes.set(entry.key, { heartbeat: parsed.data, receivedAt: this.now() });
    }
  }

  /** Lists only nodes this predicate accepts (the gateway: registered nodes). */
  restrictTo(accept: (nodeId: string) => boolean): this {
    this.accept = accept;
    return this;
  }

  /** Resolves once the bucket's current contents have been read. */
  whenReady(): Promise<void> {
    return this.ready;
  }

  /** Live nodes, optionally only those serving a model. */
  list(modelId?: string): LiveNode[] {
    const cutoff = this.now() - heartbeatTtlMs;
    const out: LiveNode[] = [];
    for (const [key, node] of this.nodes) {
      if (node.receivedAt < cutoff) {
        this.nodes.delete(key);
        continue;
      }
      if (!this.accept(key)) continue;
      if (!modelId || node.heartbeat.models.some((m) => m.id === modelId)) out.push(node);
    }
    return out;
  }

  /** One live node: a lookup, not a listing (a page of 1,000 nodes asks once per node). */
  get(nodeId: string): LiveNode | undefined {
    const node = this.nodes.get(nodeId);
    if (!node || !this.accept(nodeId)) return undefined;
    if (node.receivedAt < this.now() - heartbeatTtlMs) {
      this.nodes.delete(nodeId);
      return undefined;
    }
    return node;
  }

  stop(): void {
    this.stopped = true;
    this.stopWatch?.();
  }
}
