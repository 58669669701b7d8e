/**
 * The request record behind `GET /v1/requests/<id>` and the reward ledger. Every write is an
 * idempotent upsert keyed by the request id, so a retried activity never duplicates anything.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { Db } from 'mongodb';
import { isDuplicateKey } from '../connections/mongo.ts';
import { settlementErrors } from '../domain/failures.ts';
import { accrualAmount } from '../domain/rewards.ts';
import type { NodeState } from '../domain/reputation.ts';
import { spotCheckRate, type SamplingRecord } from '../domain/sampling.ts';
import { getModel } from '../models/catalog.ts';
import type { RouteLoad } from './routing.ts';

import { store, type RequestStatus } from '../store/index.ts';

export type { RequestStatus };

export interface RequestUpdate {
  requestId: string;
  status: RequestStatus;
  fields?: Record<string, unknown>;
  /** The request ended: its slot is free again in the router's view (see RouteLoad). */
  release?: boolean | undefined;
}

/** What follows an answer, in one activity: accrue, read the node's standing, draw, record. */
export interface SettleInput extends AccrualInput {
  /** The workflow's draw in [0, 1): sampled for a spot check when below the node's rate. */
  draw: number;
  /** The answer continued another node's after a failover: not checked (its prefix is not this node's work). */
  continued: boolean;
  /** The request record's fields. */
  fields: Record<string, unknown>;
}

export interface SettleResult {
  accrual: AccrualResult;
  sampled: boolean;
}

export interface AccrualInput {
  requestId: string;
  nodeId: string;
  modelId: string;
  completionTokens: number;
}

export interface AccrualResult {
  status: 'accrued' | 'skipped';
  amount: string;
  operator?: string | undefined;
  reason?: string | undefined;
}


export function createRequestActivities(deps: { db: Db; now?: () => Date; load?: RouteLoad | undefined }) {
  const now = deps.now ?? (() => new Date());
  const { requests, ledger, registrations, nodes } = store(deps.db);

  const activities = {
    async recordRequest(update: RequestUpdate): Promise<void> {
      if (update.release) deps.load?.release(update.requestId);
      await requests.updateOne(
        { _id: update.requestId },
        { $set: { status: update.status, updatedAt: now(), ...update.fields }, $setOnInsert: { createdAt: now() } },
        { upsert: true },
      );
    },

    /**
     * Everything after the answer, in one activity so that it costs one task, not five. Each
     * step is idempotent on the request id, so a retry repeats none of them: the accrual finds
     * its entry, the record is an upsert. The draw comes from the workflow, so a retry draws alike.
     */
    async settleRequest(input: SettleInput): Promise<SettleResult> {
      deps.load?.release(input.requestId);
      const accrual = await activities.accrueReward(input);
      const standing = await activities.nodeStanding({ nodeId: input.nodeId });
      // A node without a registered operator earns nothing and is not checked.
      const sampled = accrual.operator !== undefined && !input.continued && input.draw < spotCheckRate(standing.state, standing.record);
      const verification = sampled ? { status: 'pending' } : { status: 'not sampled', ...(input.continued ? { reason: 'continued after a failover' } : {}) };
      await activities.recordRequest({ requestId: input.requestId, status: 'completed', fields: { ...input.fields, verification, accrual } });
      return { accrual, sampled };
    },

    /**
     * One accrual per request: the ledger's primary key is the request id, so a retry (or a
     * duplicate workflow run) finds the entry already there and reports it instead of paying twice.
     */
    async accrueReward(input: AccrualInput): Promise<AccrualResult> {
      if (!Number.isSafeInteger(input.completionTokens) || input.completionTokens < 0) {
        throw ApplicationFailure.nonRetryable(`accrueReward: completion tokens must be a non-negative integer, got ${String(input.completionTokens)}`, settlementErrors.ledgerBadInput);
      }
      const existing = await ledger.findOne({ _id: input.requestId });
      if (existing) return { status: 'accrued', amount: existing.amount, operator: existing.operator };
      const registration = await registrations.findOne({ _id: input.nodeId });
      if (!registration) return { status: 'skipped', amount: '0', reason: `node ${input.nodeId} is not registered` };
      const node = await nodes.findOne({ _id: input.nodeId });
      // Suspension stops a node earning, whichever queue its answer came through.
      if (node?.state === 'suspended') return { status: 'skipped', amount: '0', operator: registration.operator, reason: `node ${input.nodeId} is suspended` };
      const amount = accrualAmount(input.completionTokens, getModel(input.modelId).rewardWeight, node?.reputation ?? 0.5);
      try {
        await ledger.insertOne({
          _id: input.requestId,
          nodeId: input.nodeId,
          operator: registration.operator,
          modelId: input.modelId,
          completionTokens: input.completionTokens,
          amount: amount.toString(),
          status: 'accrued',
          createdAt: now(),
        });
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        const winner = await ledger.findOne({ _id: input.requestId });
        return { status: 'accrued', amount: winner!.amount, operator: winner!.operator };
      }
      return { status: 'accrued', amount: amount.toString(), operator: registration.operator };
    },

    /** The standing the sampling policy reads: the node actor's projection. */
    async nodeStanding(input: { nodeId: string }): Promise<{ state?: NodeState | undefined; record?: SamplingRecord | undefined }> {
      const doc = await nodes.findOne({ _id: input.nodeId });
      if (!doc?.record) return { state: doc?.state };
      const r = doc.record;
      return {
        state: doc.state,
        record: {
          verificationPasses: r.verificationPasses,
          verificationFailures: r.verificationFailures,
          consecutiveVerificationFailures: r.consecutiveVerificationFailures,
          passesSinceFailure: r.servedSinceVerificationFailure,
        },
      };
    },
  };
  return activities;
}

export type RequestActivities = ReturnType<typeof createRequestActivities>;
