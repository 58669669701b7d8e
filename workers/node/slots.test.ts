import type { ActivitySlotInfo, SlotPermit } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { SharedSlots } from './slots.ts';

const info: ActivitySlotInfo = { type: 'activity', activityType: 'infer' };
const ctx = (taskQueue: string) => ({ slotType: 'activity' as const, taskQueue, workerIdentity: 'w', workerBuildId: '', isSticky: false });

describe('SharedSlots', () => {
  it('never hands out more slots than the pool holds', async () => {
    const slots = new SharedSlots(2);
    const s = slots.supplier();
    const a = await s.reserveSlot(ctx('node.x'), new AbortController().signal);
    await s.reserveSlot(ctx('model.m'), new AbortController().signal);
    expect(s.tryReserveSlot(ctx('model.m'))).toBeNull();
    let third: SlotPermit | undefined;
    void s.reserveSlot(ctx('model.m'), new AbortController().signal).then((p) => (third = p));
    await Promise.resolve();
    expect(third).toBeUndefined();
    s.markSlotUsed({ slotInfo: info, permit: a });
    expect(slots.busy).toBe(1);
    s.releaseSlot({ slotInfo: info, permit: a });
    await Promise.resolve();
    expect(third).toBeDefined();
    expect(slots.busy).toBe(0);
  });

  it('gives a freed slot to the queue holding the fewest, so no queue starves', async () => {
    const slots = new SharedSlots(2);
    const s = slots.supplier();
    const never = new AbortController().signal;
    const nodePermit = await s.reserveSlot(ctx('node.x'), never);
    const modelPermit = await s.reserveSlot(ctx('model.m'), never);
    // Both workers reserve ahead for their next poll; the node queue asked first.
    const order: string[] = [];
    void s.reserveSlot(ctx('node.x'), never).then(() => order.push('node'));
    void s.reserveSlot(ctx('model.m'), never).then(() => order.push('model'));
    // The model queue's task finishes: its slot must go back to the model queue.
    s.releaseSlot({ slotInfo: info, permit: modelPermit });
    await Promise.resolve();
    expect(order).toEqual(['model']);
    s.releaseSlot({ permit: nodePermit });
    await Promise.resolve();
    expect(order).toEqual(['model', 'node']);
  });

  it('drops an aborted reservation', async () => {
    const slots = new SharedSlots(1);
    const s = slots.supplier();
    const first = await s.reserveSlot(ctx('q'), new AbortController().signal);
    const abort = new AbortController();
    const waiting = s.reserveSlot(ctx('q'), abort.signal);
    abort.abort();
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
    s.releaseSlot({ permit: first });
    expect(s.tryReserveSlot(ctx('q'))).not.toBeNull();
  });
});
