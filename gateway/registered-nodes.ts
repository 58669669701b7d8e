/**
 * The node ids registered with this network. The router only sends work to registered nodes,
 * so admission and /v1/models count only those: a heartbeat alone (anyone can write one to
 * NATS) must not make a model look served. Refreshed from MongoDB so every gateway process
 * learns of registrations made through another. Also keeps what each node said it runs on when
 * it registered (`gpu`), for the public listings: the same read, no second one.
 */
import type { Db } from 'mongodb';
import { store } from '../store/index.ts';

export class RegisteredNodes {
  private gpus = new Map<string, string | undefined>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly db: Db) {}

  async start(refreshMs = 5_000): Promise<this> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh().catch(() => {}), refreshMs);
    this.timer.unref();
    return this;
  }

  async refresh(): Promise<void> {
    const docs = await store(this.db).registrations.find({}, { projection: { _id: 1, gpu: 1 } }).toArray();
    this.gpus = new Map(docs.map((d) => [d._id, d.gpu]));
  }

  has(nodeId: string): boolean {
    return this.gpus.has(nodeId);
  }

  /** What the node said it runs on when it registered, as of the last read. */
  gpu(nodeId: string): string | undefined {
    return this.gpus.get(nodeId);
  }

  add(nodeId: string, gpu?: string): void {
    this.gpus.set(nodeId, gpu ?? this.gpus.get(nodeId));
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
