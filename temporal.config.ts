/**
 * The one place for Temporal names, timeouts and retry policies. Pure data: workflow code
 * imports it, so it must stay free of I/O and environment reads.
 */
import type { RetryPolicy } from '@temporalio/common';
import { inferErrors, nonRetryableSettlementErrors } from './domain/failures.ts';

/** Task queues. `node.<id>` is polled by one node; `model.<id>` by every node serving a model. */
export const taskQueues = {
  control: 'control',
  node: (nodeId: string) => `node.${nodeId}`,
  model: (modelId: string) => `model.${modelId}`,
} as const;

/** Readable workflow ids, so any job can be found in the Temporal Web UI. */
export const workflowIds = {
  request: (requestId: string) => `req-${requestId}`,
  node: (nodeId: string) => `node-${nodeId}`,
  settlement: (epoch: number) => `settle-${epoch}`,
  spotCheck: (requestId: string) => `check-${requestId}`,
} as const;

/**
 * Custom search attributes, registered on the dev server by the stack launcher
 * (`temporal server start-dev --search-attribute name=Type`).
 */
export const searchAttributes = {
  model: { name: 'GitblockModel', type: 'Keyword' },
  node: { name: 'GitblockNode', type: 'Keyword' },
  operator: { name: 'GitblockOperator', type: 'Keyword' },
  epoch: { name: 'GitblockEpoch', type: 'Int' },
} as const;

export const timeouts = {
  /** How long an inference may wait on a node's own queue before the next candidate is tried. */
  inferScheduleToStart: '5 seconds',
  /** How long an inference may wait on the model's shared queue for any node to take it. */
  inferSharedScheduleToStart: '60 seconds',
  /** On the shared queue, a few attempts: each continues from the delivered tokens. */
  inferSharedRetry: { maximumAttempts: 3, initialInterval: '200 milliseconds', nonRetryableErrorTypes: [inferErrors.badInput, inferErrors.superseded, inferErrors.cancelled] } satisfies RetryPolicy,
  /** A generous bound on one generation; heartbeats catch a dead node long before it. */
  inferStartToClose: '10 minutes',
  /** A node that has not heartbeated within this is treated as dead and the attempt retried. */
  inferHeartbeat: '3 seconds',
  /** Control-plane activities (routing, ledger, chain reads) are short. */
  controlStartToClose: '30 seconds',
  /** How long a request whose client went away waits for the gateway's cancel request. */
  clientCancelGrace: '10 seconds',
  /**
   * The most a request workflow may run, so that a gateway request cannot wait forever (with
   * the control worker down, nothing would ever end it). Above one whole generation
   * (inferStartToClose) plus the shared queue's wait and the control steps.
   */
  requestExecution: '15 minutes',
  /**
   * The most a spot check may run (verifiers are asked in turn, verifyStartToClose each at most). A check
   * that has not decided by then leaves the accrual paid; settlement waits longer than this
   * after an epoch ends (settlementConfig.scheduleDelaySeconds), so verdicts land before it closes.
   */
  spotCheckExecution: '20 minutes',
  /** Posting a root and waiting for confirmation can take a few blocks. */
  chainStartToClose: '2 minutes',
  /** A verifier that has not picked up the check by then is busy or gone: the next one is asked. */
  verifyScheduleToStart: '10 seconds',
  /** One forward pass over prompt + answer: well under a generation's bound. */
  verifyStartToClose: '2 minutes',
  /** The verifier heartbeats while it scores; silence this long means it died. */
  verifyHeartbeat: '30 seconds',
} as const;

/** A verifier gets one attempt: the spot check asks another node rather than the same one again. */
export const verifyRetry: RetryPolicy = {
  maximumAttempts: 1,
};

/** Control activities are idempotent, so they may retry freely. */
export const controlRetry: RetryPolicy = {
  initialInterval: '200 milliseconds',
  backoffCoefficient: 2,
  maximumInterval: '10 seconds',
  maximumAttempts: 10,
};

/**
 * Inference is retried by the request workflow itself (next candidate, then the model queue),
 * not by Temporal's retry loop on one queue, so that a failover moves to another node.
 */
export const inferRetry: RetryPolicy = {
  maximumAttempts: 1,
};

/** Pacing of the node actor (workflows/node-actor.ts). */
export const nodeActorTimeouts = {
  /**
   * At most one MongoDB projection per interval: a busy node gets many outcome signals a
   * second, and each projection is an activity. A lifecycle change is projected at once.
   */
  projectionInterval: '2 seconds',
  /** How often a registered node's heartbeat is sampled for its uptime. */
  livenessIntervalMs: 60 * 1000,
  /** How often an actor re-reads its peers' medians (a read over every node of its models). */
  peerRefreshMs: 5 * 60 * 1000,
} as const;

/** Weekly settlement (workflows/settlement.ts). */
export const settlementConfig = {
  /** The Temporal Schedule that starts the weekly settlement tick. */
  scheduleId: 'gitblock-settlement',
  /** The tick's workflow id; the Schedule appends the scheduled time to it. */
  tickWorkflowId: 'settle-schedule',
  /**
   * The Schedule fires this long after an epoch ends, so requests finishing at the boundary have
   * accrued and their spot checks (at most timeouts.spotCheckExecution) have voided what they fail.
   */
  scheduleDelaySeconds: 1800,
  /** One step; computing an epoch of 100,000 operators takes well under this (bench/settlement.ts). */
  stepStartToClose: '15 minutes',
  /** Reads of the epoch's record: small and quick. */
  readStartToClose: '30 seconds',
  /** Steps heartbeat; a step on a worker that died is noticed after this and retried on another. */
  stepHeartbeat: '10 seconds',
  /** How many times the workflow posts again after a posted root vanished (reorg) before failing. */
  maxReposts: 5,
} as const;

/**
 * Every settlement step is idempotent (it reads the epoch's record and resumes), so it may be
 * retried for a long while: an RPC endpoint or MongoDB being away for minutes must not fail
 * the week's settlement. The codes listed are business errors a retry cannot fix.
 */
export const settlementRetry: RetryPolicy = {
  initialInterval: '1 second',
  backoffCoefficient: 2,
  maximumInterval: '1 minute',
  maximumAttempts: 60,
  nonRetryableErrorTypes: nonRetryableSettlementErrors,
};
