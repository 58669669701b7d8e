/**
 * Where a request's time to first token goes, read from its workflow history and the client's
 * own clock (same machine, same clock): for `bench/gateway-latency.ts --trace`.
 *
 *   admission   client sends → the server records WorkflowExecutionStarted (gateway checks, quota,
 *               record, relay subscription, the start call)
 *   dispatch    WorkflowExecutionStarted → first WorkflowTaskStarted (the control worker gets it)
 *   first task  first WorkflowTaskStarted → `infer` ActivityTaskScheduled (the workflow code and
 *               the `route` local activity; the task's completion carries the schedule command)
 *   to node     `infer` scheduled → ActivityTaskStarted (matching, the edge, the node's poll)
 *   node+relay  `infer` started → first token at the client (engine start, first token, publish
 *               through the edge, JetStream, the gateway's relay)
 */
import type { Client } from '@temporalio/client';
import { optionalTsToMs } from '@temporalio/common';
import protoModule from '@temporalio/proto';
import { median } from './harness.ts';

const E = protoModule.temporal.api.enums.v1.EventType;

export interface Sent {
  requestId: string;
  sentAt: number;
  firstAt: number;
}

export const phases = ['admission', 'dispatch', 'first task', 'to node', 'node+relay'] as const;
export type Phase = (typeof phases)[number];

export async function traceOf(client: Client, workflowId: string, sent: Sent): Promise<Record<Phase, number> | undefined> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  const at = (type: (typeof E)[keyof typeof E], from = 0) => {
    const i = events.findIndex((e, k) => k >= from && e.eventType === type);
    return i < 0 ? undefined : { i, ms: optionalTsToMs(events[i]!.eventTime)! };
  };
  const started = at(E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED);
  const task = at(E.EVENT_TYPE_WORKFLOW_TASK_STARTED);
  const scheduled = at(E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED);
  const activity = scheduled && at(E.EVENT_TYPE_ACTIVITY_TASK_STARTED, scheduled.i);
  if (!started || !task || !scheduled || !activity) return undefined;
  return {
    admission: started.ms - sent.sentAt,
    dispatch: task.ms - started.ms,
    'first task': scheduled.ms - task.ms,
    'to node': activity.ms - scheduled.ms,
    'node+relay': sent.firstAt - activity.ms,
  };
}

/** The p50 of each phase over the traced requests. */
export function phaseMedians(traces: Record<Phase, number>[]): Record<Phase, number> {
  return Object.fromEntries(phases.map((p) => [p, median(traces.map((t) => t[p]))])) as Record<Phase, number>;
}
