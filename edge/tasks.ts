/**
 * Which node holds which Temporal activity task, as the edge handed them out. A node may
 * heartbeat, complete, fail or cancel only a task token it was given; it may publish to, read
 * or watch a request's token stream only while it holds that request's newest task, so a node
 * that was failed over from is shut out of the stream at once, not only by fencing.
 *
 * The edge also measures what it sees pass (time to the first chunk, tokens per second), so
 * the speed the router and reputation use is the network's measurement, not the node's word.
 */

export interface HeldTask {
  key: string;
  nodeId: string;
  activityType: string;
  /** For `infer` tasks: the request and its token subject, read from the task's own input. */
  requestId?: string | undefined;
  subject?: string | undefined;
  handedAt: number;
  /** When the task stops being held whatever happens (its start-to-close timeout, plus a margin). */
  expiresAt: number;
  firstChunkAt?: number | undefined;
  lastChunkAt?: number | undefined;
  tokensPublished: number;
  /** The edge told the node its request was cancelled (a cancel message, or Temporal's cancel on a heartbeat). */
  cancelDelivered?: boolean | undefined;
  /** The edge refused one of its publishes because another attempt had taken over. */
  supersededSeen?: boolean | undefined;
}

export interface MeasuredTimings {
  timeToFirstTokenMs: number;
  tokensPerSecond: number;
  totalMs: number;
}

const taskMargin = 60_000;
const emaAlpha = 0.3;

export class TaskLedger {
  private readonly tasks = new Map<string, HeldTask>();
  /** requestId → key of its newest infer task. */
  private readonly newest = new Map<string, string>();
  /** Per node: tokens per second over its recent answers, as measured here. */
  private readonly speed = new Map<string, number>();

  constructor(private readonly now: () => number = () => performance.timeOrigin + performance.now()) {}

  static key(taskToken: Uint8Array): string {
    return Buffer.from(taskToken).toString('base64');
  }

  hand(task: { taskToken: Uint8Array; nodeId: string; activityType: string; requestId?: string | undefined; subject?: string | undefined; startToCloseMs: number }): HeldTask {
    this.sweep();
    const at = this.now();
    const key = TaskLedger.key(task.taskToken);
    const held: HeldTask = {
      key,
      nodeId: task.nodeId,
      activityType: task.activityType,
      requestId: task.requestId,
      subject: task.subject,
      handedAt: at,
      expiresAt: at + task.startToCloseMs + taskMargin,
      tokensPublished: 0,
    };
    this.tasks.set(key, held);
    if (task.requestId) this.newest.set(task.requestId, key);
    return held;
  }

  /** The task if `nodeId` holds this token, else undefined. */
  heldBy(nodeId: string, taskToken: Uint8Array): HeldTask | undefined {
    const held = this.tasks.get(TaskLedger.key(taskToken));
    return held && held.nodeId === nodeId && held.expiresAt > this.now() ? held : undefined;
  }

  /**
   * The request's newest task when `nodeId` holds it. `superseded` when the node holds an older
   * task of that request (another attempt took over), `not-held` when it holds none.
   */
  request(nodeId: string, requestId: string): HeldTask | 'superseded' | 'not-held' {
    const key = this.newest.get(requestId);
    const held = key ? this.tasks.get(key) : undefined;
    if (held && held.nodeId === nodeId && held.expiresAt > this.now()) return held;
    return this.heldOf(nodeId, requestId).length ? 'superseded' : 'not-held';
  }

  /** Every task of a request that the node holds, the newest or not. */
  heldOf(nodeId: string, requestId: string): HeldTask[] {
    return [...this.tasks.values()].filter((t) => t.nodeId === nodeId && t.requestId === requestId);
  }

  /** How long the task stays held, ms, whatever the node does. */
  msLeft(task: HeldTask): number {
    return Math.max(0, task.expiresAt - this.now());
  }

  recordChunk(task: HeldTask, tokens: number): void {
    const at = this.now();
    if (tokens > 0) task.firstChunkAt ??= at;
    task.lastChunkAt = at;
    task.tokensPublished += tokens;
  }

  /** What the edge saw of a task: from hand-out to its first token, and the token rate after it. */
  measure(task: HeldTask): MeasuredTimings {
    const at = this.now();
    const first = task.firstChunkAt;
    const span = first !== undefined && task.lastChunkAt !== undefined ? task.lastChunkAt - first : 0;
    // The first chunk's tokens arrived at `first`: the rate is over the ones after it.
    const after = Math.max(0, task.tokensPublished - 1);
    return {
      timeToFirstTokenMs: first !== undefined ? first - task.handedAt : at - task.handedAt,
      tokensPerSecond: span > 0 ? (after * 1000) / span : 0,
      totalMs: at - task.handedAt,
    };
  }

  /** Forgets a finished task and folds what was measured into the node's speed. */
  release(task: HeldTask, finished: boolean): void {
    this.tasks.delete(task.key);
    if (task.requestId && this.newest.get(task.requestId) === task.key) this.newest.delete(task.requestId);
    if (finished && task.activityType === 'infer') {
      const tps = this.measure(task).tokensPerSecond;
      if (tps > 0) {
        const prev = this.speed.get(task.nodeId);
        this.speed.set(task.nodeId, prev === undefined ? tps : (1 - emaAlpha) * prev + emaAlpha * tps);
      }
    }
  }

  /** Inference tasks the node holds now. */
  inFlight(nodeId: string): number {
    let n = 0;
    for (const t of this.tasks.values()) if (t.nodeId === nodeId && t.activityType === 'infer' && t.expiresAt > this.now()) n++;
    return n;
  }

  tokensPerSecond(nodeId: string): number {
    return this.speed.get(nodeId) ?? 0;
  }

  get size(): number {
    return this.tasks.size;
  }

  private sweep(): void {
    const at = this.now();
    for (const [key, t] of this.tasks) {
      if (t.expiresAt <= at) {
        this.tasks.delete(key);
        if (t.requestId && this.newest.get(t.requestId) === key) this.newest.delete(t.requestId);
      }
    }
  }
}
