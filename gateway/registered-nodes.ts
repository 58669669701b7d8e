/**
 * The node ids registered with this network. The router only sends work to registered nodes,
 * so admission and /v1/models count only those: a heartbeat alone (anyone can write one to
 * NATS) must not make a model look served. Refreshed from MongoDB so every gateway process
 * learns of registrations made through another.
 */
import type { Db } from 'mongodb';

export class RegisteredNodes {
  private ids = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly db: Db) {}

  async start(refreshMs = 5_000): Promise<this> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh().catch(() => {}), refreshMs);
    this.timer.unref();
    return this;
  }

  async refresh(): Promise<void> {
    const docs = await this.db.collection<{ _id: string }>('node_registrations').find({}, { projection: { _id: 1 } }).toArray();
    this.ids = new Set(docs.map((d) => d._id));
  }

  has(nodeId: string): boolean {
    return this.ids.has(nodeId);
  }

  add(nodeId: string): void {
    this.ids.add(nodeId);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
