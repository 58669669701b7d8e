/**
 * Puts this node's live state into the NATS key-value bucket every few seconds. The bucket's
 * TTL removes a node that stops: routing needs no other liveness signal.
 */
import type { KV } from '@nats-io/kv';
import { heartbeatIntervalMs, heartbeatKey, type Heartbeat } from '../../domain/heartbeat.ts';

export class HeartbeatPublisher {
  private timer: NodeJS.Timeout | undefined;
  private lastError: string | undefined;

  constructor(
    private readonly kv: KV,
    private readonly nodeId: string,
    private readonly state: () => Promise<Heartbeat> | Heartbeat,
    private readonly log: (line: string) => void = () => {},
  ) {}

  async beat(): Promise<void> {
    try {
      await this.kv.put(heartbeatKey(this.nodeId), JSON.stringify(await this.state()));
      if (this.lastError) this.log('heartbeats are reaching NATS again');
      this.lastError = undefined;
    } catch (err) {
      // NATS down: keep serving what is in flight and try again next tick; say so once.
      const message = (err as Error).message;
      if (message !== this.lastError) this.log(`heartbeat failed: ${message}`);
      this.lastError = message;
    }
  }

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat(), heartbeatIntervalMs);
  }

  /** Stops beating and removes the entry, so routing stops at once rather than at TTL. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.kv.delete(heartbeatKey(this.nodeId)).catch(() => {});
  }
}
