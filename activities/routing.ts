/**
 * The `route` control activity: rank live nodes for one request. Live state comes from the
 * heartbeat bucket, standing (state, reputation, latency) from the node actors' projection in
 * MongoDB, and only registered nodes whose heartbeat names their registered operator count.
 * Routing a spot check (`verify`) keeps only established verifiers (`domain/verifiers.ts`).
 *
 * It runs before a request's first token, so it reads no database per request: the control
 * worker keeps the projection and the registrations in memory (`NodeDirectory`), and its own
 * record of where it sent requests (`RouteLoad`), which the heartbeats cannot show yet.
 */
import type { Db } from 'mongodb';
import type { NodeRecord } from '../domain/reputation.ts';
import type { NodeState } from '../domain/reputation.ts';
import { rankCandidates, type Candidate, type RouteDecision } from '../domain/routing.ts';
import { verifierIneligibility, verifierPolicy, type VerifierPolicy } from '../domain/verifiers.ts';
import { getModel } from '../models/catalog.ts';
import type { LiveNodes } from './live-nodes.ts';
import { RefreshedView } from './refreshed-view.ts';
import { store } from '../store/index.ts';

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
  record?: Partial<Pick<NodeRecord, 'latencyEmaMs' | 'verificationPasses' | 'verificationFailures' | 'requestsServed'>>;
}

interface RegistrationDoc {
  _id: string;
  operator: string;
  modelHashes: Record<string, string>;
}

/** How often the control worker re-reads the projection and the registrations by default. */
export const nodeDirectoryRefreshMs = 1_000;

/**
 * The node actors' projection and the registrations, in memory: re-read every `refreshMs`, and a
 * node not seen yet (registered a moment ago) is read at once. A projection change (a
 * suspension) reaches routing within `refreshMs`; the edge refuses a barred node's polls anyway.
 * Not started, it reads through on every lookup.
 */
export class NodeDirectory extends RefreshedView {
  private states = new Map<string, NodeDoc>();
  private registrations = new Map<string, RegistrationDoc>();

  constructor(private readonly db: Db) {
    super();
  }

  override start(refreshMs = nodeDirectoryRefreshMs): Promise<this> {
    return super.start(refreshMs);
  }

  protected async read(ids?: string[]): Promise<void> {
    const filter = ids ? { _id: { $in: ids } } : {};
    const [states, registrations] = await Promise.all([
      store(this.db).nodes.find(filter, { projection: { state: 1, reputation: 1, record: 1 } }).toArray(),
      store(this.db).registrations.find(filter, { projection: { operator: 1, modelHashes: 1 } }).toArray(),
    ]);
    if (!ids) {
      this.states = new Map(states.map((d) => [d._id, d]));
      this.registrations = new Map(registrations.map((d) => [d._id, d]));
      return;
    }
    for (const d of states) this.states.set(d._id, d);
    for (const d of registrations) this.registrations.set(d._id, d);
  }

  /** The standing and registration of each node, reading only those not in memory. */
  async lookup(ids: string[]): Promise<{ states: Map<string, NodeDoc>; registrations: Map<string, RegistrationDoc> }> {
    const missing = this.started ? ids.filter((id) => !this.registrations.has(id)) : ids;
    if (missing.length) await this.read(missing);
    return { states: this.states, registrations: this.registrations };
  }
}

/**
 * Where this control worker sent requests: the slots they take until the node's next heartbeat
 * shows them (so a burst never lands on a node the heartbeat still calls free), and a decaying
 * count of recent requests per node and model (so near-equal nodes share sequential traffic).
 * A request is released when its answer is settled; one never released stops counting at the
 * node's next heartbeat, which counts it itself.
 */
export class RouteLoad {
  private readonly open = new Map<string, Map<string, number>>();
  private readonly recentByKey = new Map<string, { count: number; at: number }>();

  /** @param decayMs the time over which a recent request's weight falls to 1/e. */
  constructor(private readonly decayMs = 60_000) {}

  assign(requestId: string, modelId: string, nodeId: string, at: number): void {
    let perNode = this.open.get(nodeId);
    if (!perNode) this.open.set(nodeId, (perNode = new Map<string, number>()));
    perNode.set(requestId, at);
    const key = `${modelId}\u0000${nodeId}`;
    this.recentByKey.set(key, { count: this.recent(modelId, nodeId, at) + 1, at });
  }

  release(requestId: string): void {
    for (const perNode of this.open.values()) if (perNode.delete(requestId)) return;
  }

  /** Requests sent to the node after `heartbeatAt` and not yet released; older ones are forgotten. */
  since(nodeId: string, heartbeatAt: number): number {
    const perNode = this.open.get(nodeId);
    if (!perNode) return 0;
    let n = 0;
    for (const [requestId, at] of perNode) {
      if (at > heartbeatAt) n++;
      else perNode.delete(requestId);
    }
    return n;
  }

  recent(modelId: string, nodeId: string, now: number): number {
    const r = this.recentByKey.get(`${modelId}\u0000${nodeId}`);
    return r ? r.count * Math.exp(-Math.max(0, now - r.at) / this.decayMs) : 0;
  }
}

export interface RoutingDeps {
  db: Db;
  liveNodes: LiveNodes;
  /** The in-memory view; without one, every route reads MongoDB. */
  directory?: NodeDirectory | undefined;
  /** Where this worker sent requests; without one, only heartbeats tell load. */
  load?: RouteLoad | undefined;
  now?: () => number;
  /** Who may verify; without it, no seed operators (only nodes with a record verify). */
  verifiers?: VerifierPolicy | undefined;
}

export function createRoutingActivities(deps: RoutingDeps) {
  const now = deps.now ?? Date.now;
  const verifiers = deps.verifiers ?? verifierPolicy();
  const directory = deps.directory ?? new NodeDirectory(deps.db);
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
      const { states: stateOf, registrations: registered } = await directory.lookup(claimant === undefined ? ids : [...ids, claimant]);
      const at = now();
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
          // A node's idle poller on each model's shared queue holds one of its slots
          // (workers/node/slots.ts): what its own queue can take now is that much less.
          freeSlots: h.freeSlots - h.models.length,
          recentTokensPerSecond: h.recentTokensPerSecond,
          latencyMs: doc?.record?.latencyEmaMs ?? undefined, // null until the node's first measured request
          reputation: doc?.reputation ?? 0.5,
          heartbeatAgeMs: at - receivedAt,
          assignedSinceHeartbeat: deps.load?.since(h.nodeId, receivedAt),
          recentRequests: deps.load?.recent(input.modelId, h.nodeId, at),
          requestsServed: doc?.record?.requestsServed ?? 0,
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
      // A spot check is not traffic: it neither takes from the balance nor is released.
      const chosen = decision.ranked[0];
      if (chosen && !input.verify) deps.load?.assign(input.requestId, input.modelId, chosen.nodeId, at);
      return { ranked: decision.ranked, rejected: [...rejected, ...decision.rejected].slice(0, 20), busy: decision.busy };
    },
  };
}

export type RoutingActivities = ReturnType<typeof createRoutingActivities>;
