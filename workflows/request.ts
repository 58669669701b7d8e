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
  proxyActivities,
  setHandler,
  sleep,
  startChild,
  condition,
  defineUpdate,
  patched,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { RequestActivities, SettleResult } from '../activities/requests.ts';
import type { RoutingActivities } from '../activities/routing.ts';
import { inferErrors, requestErrors } from '../domain/failures.ts';
import type { InferInput, InferResult } from '../domain/inference.ts';
import type { RankedCandidate, RouteDecision } from '../domain/routing.ts';
import { controlRetry, searchAttributes, timeouts, workflowIds } from '../temporal.config.ts';
import { runInference, type InferAttempt } from './inference.ts';
import { requestOutcomeSignal } from './node-actor.ts';
import { spotCheckWorkflow } from './spot-check.ts';

// Control steps are short, idempotent and run by the same worker as this workflow: as local
// activities they skip a task-queue round trip through the server each (bench/gateway-latency.ts).
const control = proxyLocalActivities<RoutingActivities & RequestActivities>({
  startToCloseTimeout: timeouts.controlStartToClose,
  retry: controlRetry,
});

// What follows the answer is one ordinary activity, not a local one: a local activity would hold
// open the workflow task that carries the answer to the gateway until it finished.
const after = proxyActivities<Pick<RequestActivities, 'settleRequest'>>({
  startToCloseTimeout: timeouts.controlStartToClose,
  retry: controlRetry,
});

export interface RequestInput extends InferInput {
  /** Conservative prompt size estimate, for admission (the node counts exactly). */
  promptTokensEstimate: number;
  /**
   * The route, decided by the gateway from its own in-memory view as it admitted the request
   * (gateway/router.ts): the first workflow task then only schedules `infer`. Absent, the
   * workflow asks the control worker's `route`.
   */
  route?: RouteDecision | undefined;
  /**
   * Ms since epoch: a start Temporal accepts after this ends the request at once, unserved. The
   * gateway waits only so long for the start (gateway/upstream.ts) and then answers 503; a start
   * held up meanwhile (Temporal paused, a network partition) would otherwise run and be paid for
   * a client that was told to retry. Absent: no limit.
   */
  startBy?: number | undefined;
}

/** What the client is answered with, as soon as the answer is complete and validated. */
export interface RequestAnswer {
  result: InferResult;
  route: { chosen: RankedCandidate | undefined; ranked: RankedCandidate[] };
  attempts: InferAttempt[];
}

/** The workflow's result: the answer and what followed it. */
export interface RequestOutcome extends RequestAnswer {
  accrual: { status: 'accrued' | 'skipped'; amount: string; reason?: string | undefined };
}

/**
 * The answer, as soon as it is complete and validated: the gateway waits on this update rather
 * than on the workflow's end, so accrual, scoring, the record and the spot-check draw, which
 * follow in the same workflow (still exactly once, still durable), never delay the client.
 * Fails when the request does; the workflow's own failure then says why.
 */
export const answerUpdate = defineUpdate<RequestAnswer>('answer');

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

export async function requestWorkflow(request: RequestInput): Promise<RequestOutcome> {
  // The route is the workflow's, not the node's: what goes to `infer` is the rest.
  const { route, ...input } = request;
  const { requestId } = input;
  let answer: RequestAnswer | undefined;
  let failed = false;
  setHandler(answerUpdate, async () => {
    await condition(() => answer !== undefined || failed);
    if (answer) return answer;
    throw ApplicationFailure.nonRetryable(`request ${requestId} failed`, 'REQUEST_FAILED');
  });
  upsertSearchAttributes({ [searchAttributes.model.name]: [input.modelId] });
  try {
    // The start time is Temporal's, from the history: the same on every replay.
    if (input.startBy !== undefined && workflowInfo().startTime.getTime() > input.startBy) {
      throw ApplicationFailure.nonRetryable(
        `request ${requestId} reached Temporal ${workflowInfo().startTime.getTime() - input.startBy} ms after its gateway stopped waiting for it; not served`,
        requestErrors.startedTooLate,
      );
    }
    // Before the first token: the route (from the control worker's memory) and `infer`, nothing else.
    const decision =
      route ??
      (await control.route({
        requestId,
        modelId: input.modelId,
        promptTokens: input.promptTokensEstimate,
        maxTokens: input.sampling.maxTokens,
      }));
    // Every fitting node busy: no candidate, so the request waits in the model's shared queue.
    if (!decision.ranked.length && !decision.busy) {
      const why = decision.rejected.length ? decision.rejected.map((r) => `${r.nodeId}: ${r.why}`).join('; ') : `no live node serves ${input.modelId}`;
      throw ApplicationFailure.nonRetryable(`no node can serve ${input.modelId} now (${why})`, inferErrors.noNode, decision.rejected);
    }
    const { result, attempts } = await runInference(input, decision.ranked.map((r) => r.nodeId));
    upsertSearchAttributes({ [searchAttributes.node.name]: [result.nodeId] });
    answer = { result, route: { chosen: decision.ranked.find((r) => r.nodeId === result.nodeId), ranked: decision.ranked }, attempts };
    return { ...answer, accrual: await afterAnswer(input, answer, decision.rejected) };
  } catch (caught) {
    failed = true;
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
    // Record how it ended even when cancelled: the record must not stay 'routing'.
    await CancellationScope.nonCancellable(() =>
      control.recordRequest({ requestId, status: isCancellation(err) ? 'cancelled' : 'failed', fields: { error: (err as Error).message }, release: true }),
    );
    throw err;
  }
}

/**
 * After the answer: score every node that had a go, accrue, record, draw the spot check, in one
 * activity and the commands it leads to. Exactly once: the accrual is keyed by the request id
 * and the signals by it too.
 */
async function afterAnswer(input: RequestInput, answer: RequestAnswer, rejected: { nodeId: string; why: string }[]): Promise<RequestOutcome['accrual']> {
  const { requestId } = input;
  const { result, attempts } = answer;
  // Only a node that failed the request is told so: one that timed out before starting it was
  // busy or gone (its heartbeat tells which), and busy is not failing.
  const failedNodes = attempts
    .filter((a) => a.outcome === 'failed' && a.taskQueue.startsWith('node.'))
    .map((a) => a.taskQueue.slice('node.'.length))
    .filter((n) => n !== result.nodeId);
  const signals = [reportOutcome(result.nodeId, requestId, true, result), ...failedNodes.map((n) => reportOutcome(n, requestId, false))];
  const settled: SettleResult = await after.settleRequest({
    requestId,
    nodeId: result.nodeId,
    modelId: input.modelId,
    // Paid for the tokens this node generated, counted from the validated answer rather than
    // its own usage report; what an earlier, failed node delivered is not its work.
    completionTokens: result.tokens.length - result.continuedFromTokens,
    // The spot-check draw: from the workflow's server-seeded random, after the answer was
    // delivered, so the node could not know while serving.
    draw: Math.random(),
    continued: result.continuedFromTokens > 0,
    fields: {
      nodeId: result.nodeId,
      modelHash: result.modelHash,
      route: answer.route.ranked,
      rejected,
      routeReason: answer.route.chosen?.reason ?? 'served from the shared model queue',
      attempts,
      usage: result.usage,
      finishReason: result.finishReason,
      timings: result.timings,
      continuedFromTokens: result.continuedFromTokens,
      workflowId: workflowInfo().workflowId,
    },
  });
  const { accrual } = settled;
  // Filterable by operator in the Temporal UI. Behind a patch: requests already running when
  // this shipped replay without the command.
  if (accrual.operator !== undefined && patched('operator-search-attribute')) {
    upsertSearchAttributes({ [searchAttributes.operator.name]: [accrual.operator] });
  }
  if (settled.sampled && accrual.operator !== undefined) await startSpotCheck(input, result, accrual.operator);
  await Promise.all(signals);
  return accrual;
}

/** Not awaited beyond its start, and left running when this workflow completes: the check never delays anything. */
async function startSpotCheck(input: RequestInput, result: InferResult, operator: string): Promise<void> {
  await startChild(spotCheckWorkflow, {
    workflowId: workflowIds.spotCheck(input.requestId),
    parentClosePolicy: ParentClosePolicy.ABANDON,
    workflowExecutionTimeout: timeouts.spotCheckExecution,
    // The checked answer's model, node and operator, to find a node's or operator's checks.
    searchAttributes: { [searchAttributes.model.name]: [input.modelId], [searchAttributes.node.name]: [result.nodeId], [searchAttributes.operator.name]: [operator] },
    args: [
      {
        claim: {
          requestId: input.requestId,
          nodeId: result.nodeId,
          operator,
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
