/**
 * Sends this node's live state to the edge every few seconds; the edge checks it, caps it and
 * writes it to the nodes' bucket, whose TTL removes a node that stops: routing needs no other
 * liveness signal.
 */
import { heartbeatIntervalMs } from '../../domain/heartbeat.ts';
import type { NodeReport } from '../../edge/protocol.ts';

/** Where beats go: the edge (a GPU node), or anything else that takes a report. */
export interface HeartbeatSink {
  heartbeat(report: NodeReport): Promise<unknown>;
  offline(): Promise<unknown>;
}

export class HeartbeatPublisher {
  private timer: NodeJS.Timeout | undefined;
  private lastError: string | undefined;

  constructor(
    private readonly sink: HeartbeatSink,
    private readonly state: () => Promise<NodeReport> | NodeReport,
    private readonly log: (line: string) => void = () => {},
  ) {}

  async beat(): Promise<void> {
    try {
      await this.sink.heartbeat(await this.state());
      if (this.lastError) this.log('heartbeats are reaching the edge again');
      this.lastError = undefined;
    } catch (err) {
      // Edge down: keep serving what is in flight and try again next tick; say so once.
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
    await this.sink.offline().catch(() => {});
  }
}
