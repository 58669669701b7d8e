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
  private stopWatch: (() => void) | undefined;
  private readonly ready: Promise<void>;
  rejected = 0;
  /** Why the watch ended early, if it did (NATS gone): the view then empties as entries age out. */
  watchFailure: unknown;
  private accept: (nodeId: string) => boolean = () => true;

  constructor(
    private readonly kv: KV,
    private readonly now: () => number = Date.now,
  ) {
    this.ready = this.watch();
  }

  private async watch(): Promise<void> {
    let markReady!: () => void;
    const initial = new Promise<void>((r) => (markReady = r));
    const watcher = await this.kv.watch();
    // The replay of the bucket's current entries ends with the entry whose `delta` (entries
    // still pending) is 0. That entry is flagged `isUpdate` by the library (it counts the last
    // replayed entry as the first update), so `delta` alone decides. An empty bucket sends
    // nothing; and entries that expire by TTL during the replay never arrive: every live node
    // writes again within one heartbeat interval, so after that the view is complete anyway.
    const fallback = setTimeout(markReady, heartbeatIntervalMs + 1_000);
    fallback.unref();
    this.stopWatch = () => {
      clearTimeout(fallback);
      watcher.stop();
    };
    if ((await this.kv.status()).values === 0) markReady();
    // The watch runs for the life of this view (stop() ends it), beside whoever awaits `initial`.
    // Should it fail, entries age out by receive time, so the view empties rather than lies; the
    // failure is kept instead of crashing the process as an unhandled rejection.
    void (async () => {
      for await (const entry of watcher) {
        if (entry.delta === 0) markReady();
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
    })().catch((err: unknown) => {
      this.watchFailure = err;
      markReady();
    });
    await initial;
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

  get(nodeId: string): LiveNode | undefined {
    return this.list().find((n) => n.heartbeat.nodeId === nodeId);
  }

  stop(): void {
    this.stopWatch?.();
  }
}
