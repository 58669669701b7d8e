/**
 * One inference request, `req-<requestId>`: route → infer (with failover) → spot-check hook →
 * score → accrue. Started by the gateway; cancelled by it when the client goes away.
 */
import {
  ApplicationFailure,
  CancellationScope,
  getExternalWorkflowHandle,
  isCancellation,
  ParentClosePolicy,
  proxyLocalActivities,
  sleep,
  startChild,
  patched,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { RequestActivities } from '../activities/requests.ts';
import type { RoutingActivities } from '../activities/routing.ts';
import { inferErrors } from '../domain/failures.ts';
import type { InferInput, InferResult } from '../domain/inference.ts';
import type { RankedCandidate } from '../domain/routing.ts';
import { controlRetry, searchAttributes, timeouts, workflowIds } from '../temporal.config.ts';
import { runInference, type InferAttempt } from './inference.ts';
import { requestOutcomeSignal } from './node-actor.ts';
import { spotCheckWorkflow } from './spot-check.ts';
import { spotCheckRate } from '../domain/sampling.ts';

// Control steps are short, idempotent and run by the same worker as this workflow: as local
// activities they skip a task-queue round trip through the server each (bench/gateway-latency.ts).
const control = proxyLocalActivities<RoutingActivities & RequestActivities>({
  startToCloseTimeout: timeouts.controlStartToClose,
  retry: controlRetry,
});

export interface RequestInput extends InferInput {
  /** Conservative prompt size estimate, for admission (the node counts exactly). */
  promptTokensEstimate: number;
}

export interface RequestOutcome {
  result: InferResult;
  route: { chosen: RankedCandidate | undefined; ranked: RankedCandidate[] };
  attempts: InferAttempt[];
  accrual: { status: 'accrued' | 'skipped'; amount: string; reason?: string | undefined };
}

/** Tells a node's actor how an attempt went; a node without an actor (unregistered) is skipped. */
async function reportOutcome(nodeId: string, requestId: string, ok: boolean, result?: InferResult): Promise<void> {
  try {
    await getExternalWorkflowHandle(workflowIds.node(nodeId)).signal(requestOutcomeSignal, {
      requestId,
      ok,
      ...(result ? { latencyMs: result.timings.timeToFirstTokenMs, tokensPerSecond: result.timings.tokensPerSecond } : {}),
      at: Date.now(),
    });
  } catch {
    // No actor for this node: nothing to score.
  }
}

export async function requestWorkflow(input: RequestInput): Promise<RequestOutcome> {
  const { requestId } = input;
  upsertSearchAttributes({ [searchAttributes.model.name]: [input.modelId] });
  try {
    const decision = await control.route({
      requestId,
      modelId: input.modelId,
      promptTokens: input.promptTokensEstimate,
      maxTokens: input.sampling.maxTokens,
    });
    if (!decision.ranked.length) {
      const why = decision.rejected.length ? decision.rejected.map((r) => `${r.nodeId}: ${r.why}`).join('; ') : `no live node serves ${input.modelId}`;
      throw ApplicationFailure.nonRetryable(`no node can serve ${input.modelId} now (${why})`, inferErrors.noNode, decision.rejected);
    }
    await control.recordRequest({ requestId, status: 'running', fields: { route: decision.ranked, rejected: decision.rejected } });

    const { result, attempts } = await runInference(input, decision.ranked.map((r) => r.nodeId));
    upsertSearchAttributes({ [searchAttributes.node.name]: [result.nodeId] });
    const chosen = decision.ranked.find((r) => r.nodeId === result.nodeId);


    // Score: every node that had a go at this request learns how it went; the accrual does
    // not wait for those signals.
    const failedNodes = attempts
      .map((a) => (a.taskQueue.startsWith('node.') ? a.taskQueue.slice('node.'.length) : undefined))
      .filter((n): n is string => n !== undefined && n !== result.nodeId);
    // Paid for the tokens this node generated, counted from the validated answer rather than
    // its own usage report; what an earlier, failed node delivered is not its work.
    const newTokens = result.tokens.length - result.continuedFromTokens;
    const [accrual] = await Promise.all([
      control.accrueReward({ requestId, nodeId: result.nodeId, modelId: input.modelId, completionTokens: newTokens }),
      reportOutcome(result.nodeId, requestId, true, result),
      ...failedNodes.map((n) => reportOutcome(n, requestId, false)),
    ]);
    // Filterable by operator in the Temporal UI. Behind a patch: requests already running when
    // this shipped replay without the command.
    if (accrual.operator !== undefined && patched('operator-search-attribute')) {
      upsertSearchAttributes({ [searchAttributes.operator.name]: [accrual.operator] });
    }
    // Spot check: drawn after the answer was delivered, from the workflow's server-seeded
    // random, so the node could not know while serving. A node without a registered operator
    // earns nothing and is not checked.
    // An answer continued after a failover is not checked: its prefix is another node's work,
    // and judging the finishing node on it could blame an honest node for a liar's tokens.
    const standing = await control.nodeStanding({ nodeId: result.nodeId });
    const sampled = accrual.operator !== undefined && result.continuedFromTokens === 0 && Math.random() < spotCheckRate(standing.state, standing.record);
    await control.recordRequest({
      requestId,
      status: 'completed',
      fields: {
        nodeId: result.nodeId,
        modelHash: result.modelHash,
        routeReason: chosen?.reason ?? 'served from the shared model queue',
        attempts,
        usage: result.usage,
        finishReason: result.finishReason,
        timings: result.timings,
        continuedFromTokens: result.continuedFromTokens,
        verification: sampled ? { status: 'pending' } : { status: 'not sampled', ...(result.continuedFromTokens > 0 ? { reason: 'continued after a failover' } : {}) },
        accrual,
        workflowId: workflowInfo().workflowId,
      },
    });
    if (sampled) {
      // Not awaited, and left running when this workflow completes: the check never delays the answer.
      await startChild(spotCheckWorkflow, {
        workflowId: workflowIds.spotCheck(requestId),
        parentClosePolicy: ParentClosePolicy.ABANDON,
        workflowExecutionTimeout: timeouts.spotCheckExecution,
        // The checked answer's model, node and operator, to find a node's or operator's checks.
        searchAttributes: { [searchAttributes.model.name]: [input.modelId], [searchAttributes.node.name]: [result.nodeId], [searchAttributes.operator.name]: [accrual.operator!] },
        args: [
          {
            claim: {
              requestId,
              nodeId: result.nodeId,
              operator: accrual.operator!,
              modelId: input.modelId,
              modelHash: result.modelHash,
              messages: input.messages,
              prompt: input.prompt,
              tools: input.tools,
              sampling: input.sampling,
              tokens: result.tokens,
              finishReason: result.finishReason,
            },
            promptTokensEstimate: input.promptTokensEstimate,
          },
        ],
      });
    }
    return { result, route: { chosen, ranked: decision.ranked }, attempts, accrual };
  } catch (caught) {
    let err = caught;
    // The node stopped because the client went away. The gateway cancels this workflow too,
    // but the node's word can arrive first: wait a moment for the cancel, so the request ends
    // as cancelled, not failed.
    if (err instanceof ApplicationFailure && err.type === inferErrors.cancelled) {
      try {
        await sleep(timeouts.clientCancelGrace);
      } catch (cancelled) {
        err = cancelled;
      }
    }
    // Record how it ended even when cancelled: the record must not stay 'running'.
    await CancellationScope.nonCancellable(() =>
      control.recordRequest({ requestId, status: isCancellation(err) ? 'cancelled' : 'failed', fields: { error: (err as Error).message } }),
    );
    throw err;
  }
}
