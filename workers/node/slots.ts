/**
 * One pool of activity slots shared by all of a node's workers (its own queue and each model
 * queue). A worker polls only while it holds a slot, so when every slot is busy the node
 * stops taking tasks and further requests wait in Temporal, where another node can pick them
 * up, instead of piling up in this process's memory.
 *
 * Fairness matters: each Temporal worker reserves a slot ahead of its next poll, so a worker
 * that was served first could hold the whole pool while another queue starves. A freed slot
 * therefore goes to the waiting queue that holds the fewest slots.
 */
import type { ActivitySlotInfo, CustomSlotSupplier, SlotPermit } from '@temporalio/worker';

interface QueuePermit extends SlotPermit {
  taskQueue: string;
}

interface Waiter {
  taskQueue: string;
  resolve: (permit: QueuePermit) => void;
  signal: AbortSignal;
  onAbort: () => void;
}

export class SharedSlots {
  private available: number;
  private readonly waiters: Waiter[] = [];
  private readonly held = new Map<string, number>();
  private used = 0;

  constructor(readonly size: number) {
    this.available = size;
  }

  /** Slots now running a task (not merely held by an idle poller). */
  get busy(): number {
    return this.used;
  }

  supplier(): CustomSlotSupplier<ActivitySlotInfo> {
    return {
      type: 'custom',
      reserveSlot: (ctx, signal) => this.reserve(ctx.taskQueue, signal),
      tryReserveSlot: (ctx) => (this.available > 0 ? this.grant(ctx.taskQueue) : null),
      markSlotUsed: () => {
        this.used++;
      },
      releaseSlot: (ctx) => {
        if (ctx.slotInfo) this.used--;
        this.release((ctx.permit as QueuePermit).taskQueue);
      },
    };
  }

  private grant(taskQueue: string): QueuePermit {
    this.available--;
    this.held.set(taskQueue, (this.held.get(taskQueue) ?? 0) + 1);
    return { taskQueue };
  }

  private reserve(taskQueue: string, signal: AbortSignal): Promise<QueuePermit> {
    if (this.available > 0) return Promise.resolve(this.grant(taskQueue));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        taskQueue,
        resolve,
        signal,
        onAbort: () => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          const err = new Error('slot reservation aborted');
          err.name = 'AbortError';
          reject(err);
        },
      };
      signal.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private release(taskQueue: string): void {
    this.held.set(taskQueue, (this.held.get(taskQueue) ?? 1) - 1);
    this.available++;
    if (!this.waiters.length) return;
    // The waiter whose queue holds the fewest slots; ties go to the longest waiting.
    let best = 0;
    for (let i = 1; i < this.waiters.length; i++) {
      if ((this.held.get(this.waiters[i]!.taskQueue) ?? 0) < (this.held.get(this.waiters[best]!.taskQueue) ?? 0)) best = i;
    }
    const [next] = this.waiters.splice(best, 1);
    next!.signal.removeEventListener('abort', next!.onAbort);
    next!.resolve(this.grant(next!.taskQueue));
  }
}
