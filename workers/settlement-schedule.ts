/**
 * The weekly Temporal Schedule that starts settlement. Created, or brought up to date, by the
 * control worker process and `npm start` on every start: creating is idempotent because a
 * second create fails with ScheduleAlreadyRunning, and we then update the existing one to the
 * current spec (so a changed genesis or task queue takes effect), keeping its paused state.
 */
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client, type ScheduleOptionsStartWorkflowAction, type ScheduleSpec } from '@temporalio/client';
import type { EpochSchedule } from '../domain/emission.ts';
import { settlementConfig, taskQueues } from '../temporal.config.ts';
import { settlementTickWorkflow } from '../workflows/settlement.ts';

export interface SettlementScheduleOptions {
  schedule: EpochSchedule;
  taskQueue?: string;
  scheduleId?: string;
  /** Seconds after an epoch's end that the tick fires; default {@link settlementDelaySeconds}. */
  delaySeconds?: number;
}

/**
 * How long after an epoch's end its settlement starts: 30 minutes, longer than a spot check may
 * run, so failed checks void their accruals first. Epochs shorter than two hours (local
 * experiments, `npm start -- --epoch 2m`) wait a quarter of an epoch, at least 10 s, so each
 * settles before the next ends; a check still running then finds its accrual already paid, which
 * settlement records (`voidedAfterPayout`).
 */
export function settlementDelaySeconds(epochSeconds: number): number {
  return Math.min(settlementConfig.scheduleDelaySeconds, Math.max(10, Math.floor(epochSeconds / 4)));
}

/**
 * Fires once per epoch, `delaySeconds` after each epoch ends. Temporal intervals are aligned
 * to the Unix epoch (`n × every + offset`), so the offset carries genesis' phase in the week.
 */
export function settlementScheduleSpec(schedule: EpochSchedule, delaySeconds: number = settlementDelaySeconds(schedule.epochSeconds)): ScheduleSpec {
  const every = schedule.epochSeconds;
  const offset = (((schedule.genesis + delaySeconds) % every) + every) % every;
  return { intervals: [{ every: every * 1000, offset: offset * 1000 }] };
}

export async function ensureSettlementSchedule(client: Client, options: SettlementScheduleOptions): Promise<{ scheduleId: string; created: boolean }> {
  const scheduleId = options.scheduleId ?? settlementConfig.scheduleId;
  const spec = settlementScheduleSpec(options.schedule, options.delaySeconds);
  const action: ScheduleOptionsStartWorkflowAction<typeof settlementTickWorkflow> = {
    type: 'startWorkflow',
    workflowType: settlementTickWorkflow,
    args: [],
    taskQueue: options.taskQueue ?? taskQueues.control,
    workflowId: settlementConfig.tickWorkflowId,
  };
  const policies = {
    // A tick settles everything due, so a tick that is still running makes the next one redundant.
    overlap: ScheduleOverlapPolicy.SKIP,
    // After an outage, one catch-up tick is enough (it settles every epoch due).
    catchupWindow: Math.max(60, options.schedule.epochSeconds) * 1000,
  };
  try {
    await client.schedule.create({ scheduleId, spec, action, policies });
    return { scheduleId, created: true };
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  await client.schedule.getHandle(scheduleId).update((previous) => ({ ...previous, spec, action, policies: { ...previous.policies, ...policies } }));
  return { scheduleId, created: false };
}
