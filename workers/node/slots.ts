/**
 * One pool of activity slots shared by all of a node's workers (its own queue and each model
 * queue). A worker polls only while it holds a slot, so when every slot is busy the node
 * stops taking tasks and further requests wait in Temporal, where another node can pick them
 * up, instead of piling up in this process's memory.
 */
import type { CustomSlotSupplier, SlotPermit, ActivitySlotInfo } from '@temporalio/worker';

export class SharedSlots {
  private available: number;
  private readonly waiters: { resolve: (permit: SlotPermit) => void; reject: (err: Error) => void; signal: AbortSignal; onAbort: () => void }[] = [];
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
      reserveSlot: (_ctx, signal) => this.reserve(signal),
      tryReserveSlot: () => {
        if (this.available <= 0) return null;
        this.available--;
        return {};
      },
      markSlotUsed: () => {
        this.used++;
      },
      releaseSlot: (ctx) => {
        if (ctx.slotInfo) this.used--;
        this.release();
      },
    };
  }

  private reserve(signal: AbortSignal): Promise<SlotPermit> {
    if (this.available > 0) {
      this.available--;
      return Promise.resolve({});
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve,
        reject,
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

  private release(): void {
    const next = this.waiters.shift();
    if (next) {
      next.signal.removeEventListener('abort', next.onAbort);
      next.resolve({});
    } else {
      this.available++;
    }
  }
}
