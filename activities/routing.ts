/**
 * The `route` control activity: rank live nodes for one request. Live state comes from the
 * heartbeat bucket, standing (state, reputation, latency) from the node actors' projection in
 * MongoDB, and only registered nodes whose heartbeat names their registered operator count.
 * Routing a spot check (`verify`) keeps only established verifiers (`domain/verifiers.ts`).
 */
import type { Db } from 'mongodb';
import type { NodeRecord } from '../domain/reputation.ts';
import type { NodeState } from '../domain/reputation.ts';
import { rankCandidates, type Candidate, type RouteDecision } from '../domain/routing.ts';
import { verifierIneligibility, verifierPolicy, type VerifierPolicy } from '../domain/verifiers.ts';
import { getModel } from '../models/catalog.ts';
import type { LiveNodes } from './live-nodes.ts';

export interface RouteInput {
  requestId: string;
  modelId: string;
  promptTokens: number;
  maxTokens: number;
  excludeOperators?: string[] | undefined;
  /**
   * Set when the route is for a spot check of `claimantNodeId`'s answer rather than for serving:
   * only established verifiers are candidates, and only those serving the file the claimant
   * registered for the model (the catalog's pinned file wins where there is one). The
   * registration, not the claim, names the file: a claim is the claimant's own word.
   */
  verify?: { claimantNodeId: string } | undefined;
}

interface NodeDoc {
  _id: string;
  state?: NodeState;
  reputation?: number;
  record?: Partial<Pick<NodeRecord, 'latencyEmaMs' | 'verificationPasses' | 'verificationFailures'>>;
}

interface RegistrationDoc {
  _id: string;
  operator: string;
  modelHashes: Record<string, string>;
}

export interface RoutingDeps {
  db: Db;
  liveNodes: LiveNodes;
  now?: () => number;
  /** Who may verify; without it, no seed operators (only nodes with a record verify). */
  verifiers?: VerifierPolicy | undefined;
}

export function createRoutingActivities(deps: RoutingDeps) {
  const now = deps.now ?? Date.now;
  const verifiers = deps.verifiers ?? verifierPolicy();
  return {
    /** Whether the node's heartbeat is live in the bucket now: the node actor samples it for uptime. */
    async nodeLive(input: { nodeId: string }): Promise<boolean> {
      await deps.liveNodes.whenReady();
      return deps.liveNodes.get(input.nodeId) !== undefined;
    },

    async route(input: RouteInput): Promise<RouteDecision> {
      await deps.liveNodes.whenReady();
      const live = deps.liveNodes.list(input.modelId);
      const ids = live.map((n) => n.heartbeat.nodeId);
      const claimant = input.verify?.claimantNodeId;
      const [states, registrations] = await Promise.all([
        deps.db.collection<NodeDoc>('nodes').find({ _id: { $in: ids } }).toArray(),
        deps.db.collection<RegistrationDoc>('node_registrations').find({ _id: { $in: claimant === undefined ? ids : [...ids, claimant] } }).toArray(),
      ]);
      const stateOf = new Map(states.map((s) => [s._id, s]));
      const registered = new Map(registrations.map((r) => [r._id, r]));
      const rejected: RouteDecision['rejected'] = [];
      const candidates: Candidate[] = [];
      for (const { heartbeat: h, receivedAt } of live) {
        const reg = registered.get(h.nodeId);
        const model = h.models.find((m) => m.id === input.modelId)!;
        if (!reg || reg.operator.toLowerCase() !== h.operator.toLowerCase()) {
          rejected.push({ nodeId: h.nodeId, why: 'not registered with the gateway under this operator' });
          continue;
        }
        if (reg.modelHashes[input.modelId] && reg.modelHashes[input.modelId] !== model.hash) {
          rejected.push({ nodeId: h.nodeId, why: 'serves a model file other than the one it registered' });
          continue;
        }
        const doc = stateOf.get(h.nodeId);
        if (input.verify) {
          const why = verifierIneligibility({ operator: reg.operator, state: doc?.state, record: doc?.record }, verifiers);
          if (why !== null) {
            rejected.push({ nodeId: h.nodeId, why: `not an established verifier: ${why}` });
            continue;
          }
        }
        candidates.push({
          nodeId: h.nodeId,
          operator: reg.operator,
          state: doc?.state ?? 'probation',
          status: h.status,
          modelHash: model.hash,
          contextSize: model.contextSize,
          maxParallel: h.maxParallel,
          inFlight: h.inFlight,
          freeSlots: h.freeSlots,
          recentTokensPerSecond: h.recentTokensPerSecond,
          latencyMs: doc?.record?.latencyEmaMs ?? undefined, // null until the node's first measured request
          reputation: doc?.reputation ?? 0.5,
          heartbeatAgeMs: now() - receivedAt,
        });
      }
      const expected = getModel(input.modelId).sha256 ?? (claimant === undefined ? undefined : registered.get(claimant)?.modelHashes[input.modelId]);
      const decision = rankCandidates(candidates, {
        requestId: input.requestId,
        modelId: input.modelId,
        promptTokens: input.promptTokens,
        maxTokens: input.maxTokens,
        expectedModelHash: expected,
        excludeOperators: input.excludeOperators ?? [],
      });
      return { ranked: decision.ranked, rejected: [...rejected, ...decision.rejected].slice(0, 20) };
    },
  };
}

export type RoutingActivities = ReturnType<typeof createRoutingActivities>;
