/**
 * Weekly settlement. `settle-<epoch>` settles one epoch: close → compute → post → confirm, each
 * step an idempotent activity (activities/settlement.ts) that resumes from the epoch's record,
 * so a crash or a retry anywhere never posts twice or pays twice. The weekly Temporal Schedule
 * starts `settlementTickWorkflow`, which settles every epoch that is due, in order, as children
 * with the readable id `settle-<epoch>`; `tsx workers/settle.ts --epoch N` starts one by hand.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  executeChild,
  ParentClosePolicy,
  proxyActivities,
  upsertSearchAttributes,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import type { SettlementActivities } from '../activities/settlement.ts';
import { isFinalEpochStatus, settlementErrors, type EpochSummary } from '../domain/settlement.ts';
import { searchAttributes, settlementConfig, settlementRetry, workflowIds } from '../temporal.config.ts';

const steps = proxyActivities<SettlementActivities>({
  startToCloseTimeout: settlementConfig.stepStartToClose,
  heartbeatTimeout: settlementConfig.stepHeartbeat,
  retry: settlementRetry,
});

/** Reads only: the epoch's record is small and its steps are quick. */
const reads = proxyActivities<Pick<SettlementActivities, 'epochsDue' | 'epochStatus'>>({
  startToCloseTimeout: settlementConfig.readStartToClose,
  retry: settlementRetry,
});

export interface SettlementInput {
  epoch: number;
}

function failureType(err: unknown): string | undefined {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? (err.cause.type ?? undefined) : undefined;
}

/** `settle-<epoch>`: settles one epoch and returns its record. */
export async function settlementWorkflow(input: SettlementInput): Promise<EpochSummary> {
  const { epoch } = input;
  if (!Number.isSafeInteger(epoch) || epoch < 0) {
    throw ApplicationFailure.nonRetryable(`epoch must be a non-negative integer, got ${String(epoch)}`, settlementErrors.invalidEpoch);
  }
  upsertSearchAttributes({ [searchAttributes.epoch.name]: [epoch] });
  await steps.closeEpoch(epoch);
  const computed = await steps.computeEpoch(epoch);
  if (isFinalEpochStatus(computed.status)) return computed;
  // A posted root that a reorg dropped sends the record back to 'computed': post it again.
  for (let reposts = 0; ; reposts++) {
    await steps.postEpochRoot(epoch);
    try {
      return await steps.confirmEpoch(epoch);
    } catch (err) {
      if (failureType(err) !== settlementErrors.postMissing || reposts >= settlementConfig.maxReposts) throw err;
    }
  }
}

export interface SettlementTickResult {
  settled: number[];
  /** Due but left for a later tick: one is being settled by another run right now. */
  deferred: number[];
}

/**
 * Started by the weekly Schedule: settles every due epoch in order, each as its own
 * `settle-<epoch>` child. A failed epoch stops the tick (later epochs depend on its payout);
 * the next tick, or a run by hand, retries it, as a failed `settle-<epoch>` may be started again.
 */
export async function settlementTickWorkflow(): Promise<SettlementTickResult> {
  const due = await reads.epochsDue();
  const settled: number[] = [];
  for (const [i, epoch] of due.entries()) {
    try {
      await executeChild(settlementWorkflow, {
        workflowId: workflowIds.settlement(epoch),
        args: [{ epoch }],
        // A completed settlement is never run again; a failed one may be, since its steps resume.
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        // Terminating the tick must not stop an epoch halfway: let it finish on its own.
        parentClosePolicy: ParentClosePolicy.ABANDON,
      });
      settled.push(epoch);
    } catch (err) {
      // The SDK does not export this error class into the workflow sandbox; its name is stable.
      if ((err as Error).name !== 'WorkflowExecutionAlreadyStartedError') throw err;
      const status = await reads.epochStatus(epoch);
      if (status && isFinalEpochStatus(status.status)) {
        settled.push(epoch);
        continue;
      }
      // settle-<epoch> is running (started by hand): later epochs must wait for it.
      return { settled, deferred: due.slice(i) };
    }
  }
  return { settled, deferred: [] };
}
