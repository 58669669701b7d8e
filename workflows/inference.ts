/**
 * The infer step shared by the request workflow and the stand-alone inference workflow:
 * each candidate node's own queue in turn (a short schedule-to-start timeout catches a node
 * that is gone), then the model's shared queue that every node serving it polls. Each attempt
 * continues the answer from what the token stream already holds, so a failover neither loses
 * nor repeats text.
 */
import { ActivityFailure, ApplicationFailure, isCancellation, log, proxyActivities, TimeoutFailure } from '@temporalio/workflow';
import type { InferActivities } from '../activities/infer.ts';
import { inferErrors, type InferInput, type InferResult } from '../domain/inference.ts';
import { inferResultSchema } from '../domain/inference-schema.ts';
import { inferRetry, taskQueues, timeouts } from '../temporal.config.ts';

export interface InferAttempt {
  taskQueue: string;
  outcome: 'ok' | 'timeout' | 'failed';
  error?: string | undefined;
}

export interface InferenceOutcome {
  result: InferResult;
  attempts: InferAttempt[];
}

function inferOn(taskQueue: string, shared: boolean) {
  return proxyActivities<InferActivities>({
    taskQueue,
    // A node's own queue: if it does not pick the task up quickly, it is gone or full.
    // The shared queue: wait for any node to free a slot.
    scheduleToStartTimeout: shared ? timeouts.inferSharedScheduleToStart : timeouts.inferScheduleToStart,
    startToCloseTimeout: timeouts.inferStartToClose,
    heartbeatTimeout: timeouts.inferHeartbeat,
    retry: shared ? timeouts.inferSharedRetry : inferRetry,
  }).infer;
}

/**
 * Errors that no other node can fix: stop failing over. The edge lets a node claim these only
 * when it saw their cause (it delivered the cancel, or refused a superseded publish).
 */
const final = new Set<string>([inferErrors.superseded, inferErrors.cancelled]);

export async function runInference(input: InferInput, candidates: readonly string[]): Promise<InferenceOutcome> {
  const attempts: InferAttempt[] = [];
  const queues = [
    ...candidates.map((n) => ({ q: taskQueues.node(n), shared: false, nodeId: n })),
    { q: taskQueues.model(input.modelId), shared: true, nodeId: undefined },
  ];
  const resultSchema = inferResultSchema(input);
  let lastError: unknown;
  // A node saying the input is bad (say, a prompt longer than its context) is one node's word:
  // the next may serve it. Only when every attempt says so is it the client's mistake.
  let badInput: ApplicationFailure | undefined;
  let otherFailures = 0;
  for (const { q, shared, nodeId } of queues) {
    try {
      const result = await inferOn(q, shared)({ ...input, fresh: attempts.length === 0 });
      // Nodes are untrusted: a malformed result, or one claiming another node's name on a
      // node's own queue, counts as a failed attempt (the next one continues from the stream).
      const checked = resultSchema.safeParse(result);
      const invalid = !checked.success
        ? checked.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')
        : nodeId !== undefined && result.nodeId !== nodeId
          ? `node ${nodeId} answered as ${String(result.nodeId).slice(0, 64)}`
          : undefined;
      if (invalid) {
        attempts.push({ taskQueue: q, outcome: 'failed', error: `invalid result: ${invalid}` });
        log.warn('inference result rejected, failing over', { taskQueue: q, error: invalid });
        lastError = new Error(`invalid result from ${q}: ${invalid}`);
        otherFailures++;
        continue;
      }
      attempts.push({ taskQueue: q, outcome: 'ok' });
      return { result, attempts };
    } catch (err) {
      if (isCancellation(err)) throw err;
      const cause = err instanceof ActivityFailure ? err.cause : undefined;
      if (cause instanceof ApplicationFailure && cause.type && final.has(cause.type)) throw cause;
      if (cause instanceof ApplicationFailure && cause.type === inferErrors.badInput) badInput = cause;
      else otherFailures++;
      attempts.push({ taskQueue: q, outcome: cause instanceof TimeoutFailure ? 'timeout' : 'failed', error: (cause ?? err as Error)?.message });
      log.warn('inference attempt failed, failing over', { taskQueue: q, error: (cause ?? (err as Error))?.message });
      lastError = err;
    }
  }
  if (badInput && otherFailures === 0) throw badInput;
  throw ApplicationFailure.nonRetryable(
    `no node could serve ${input.modelId}: ${attempts.map((a) => `${a.taskQueue} ${a.outcome}`).join(', ')}`,
    inferErrors.noNode,
    { attempts, lastError: String(lastError) },
  );
}

/** Runs one inference with failover; used by tests, benchmarks and operators' checks. */
export async function inferenceWorkflow(input: InferInput, candidates: string[]): Promise<InferenceOutcome> {
  return runInference(input, candidates);
}
