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
import type { SamplingRecord } from '../domain/sampling.ts';
import { getModel } from '../models/catalog.ts';

export type RequestStatus = 'routing' | 'running' | 'completed' | 'failed' | 'cancelled';

export interface RequestUpdate {
  requestId: string;
  status: RequestStatus;
  fields?: Record<string, unknown>;
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

export interface LedgerEntry {
  _id: string; // the request id: one accrual per request, enforced by the primary key
  nodeId: string;
  operator: string;
  modelId: string;
  completionTokens: number;
  /** GBT base units, as a decimal string (bigint). */
  amount: string;
  status: 'accrued' | 'voided';
  voidReason?: string;
  createdAt: Date;
}

export function createRequestActivities(deps: { db: Db; now?: () => Date }) {
  const now = deps.now ?? (() => new Date());
  const requests = deps.db.collection<{ _id: string }>('requests');
  const ledger = deps.db.collection<LedgerEntry>('ledger');
  const registrations = deps.db.collection<{ _id: string; operator: string }>('node_registrations');
  const nodes = deps.db.collection<{ _id: string; reputation?: number; state?: NodeState }>('nodes');

  return {
    async recordRequest(update: RequestUpdate): Promise<void> {
      await requests.updateOne(
        { _id: update.requestId },
        { $set: { status: update.status, updatedAt: now(), ...update.fields }, $setOnInsert: { createdAt: now() } },
        { upsert: true },
      );
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
      const doc = await deps.db
        .collection<{ _id: string; state?: NodeState; record?: SamplingRecord & { servedSinceVerificationFailure?: number } }>('nodes')
        .findOne({ _id: input.nodeId });
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
}

export type RequestActivities = ReturnType<typeof createRequestActivities>;
