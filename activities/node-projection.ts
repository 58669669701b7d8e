/**
 * The node actor's projection into MongoDB: the `nodes` collection is a read model of every
 * node actor's state, for the router, the gateway's status page and operators. The actor is
 * the truth; this collection only mirrors it, so a write may be dropped, repeated or
 * reordered by retries without harm (see {@link createNodeProjectionActivities}).
 */
import type { Db } from 'mongodb';
import { isDuplicateKey } from '../connections/mongo.ts';
import type { NodeRecord, NodeState, OnlineState, PeerMedians } from '../domain/reputation.ts';
import { dayMs, nodeHistoryBucketMs, nodeHistoryDayId, store, type NodeCheck, type NodeHistoryPoint } from '../store/index.ts';

export type { NodeCheck };


/** One projection of a node actor's state, as the workflow sends it. */
export interface NodeSnapshot {
  nodeId: string;
  operator: string;
  models: string[];
  state: NodeState;
  /**
   * While offline, the state the node returns to on registering again (so a suspended node that
   * shut down is still known to be suspended); otherwise null. Absent from older actors' snapshots.
   */
  resumeState?: OnlineState | null | undefined;
  reputation: number;
  record: NodeRecord;
  /** Strictly increasing across the actor's life (continue-as-new included): the newest write wins. */
  version: number;
  /** The workflow's clock when the snapshot was taken, ms since epoch. */
  updatedAt: number;
  /** The latest spot-check verdicts, oldest first; absent from older actors' snapshots. */
  checks?: NodeCheck[] | undefined;
}


/** What the router needs about one node. */
export interface NodeStateView {
  nodeId: string;
  state: NodeState;
  reputation: number;
  /** Moving average of time to first token; absent before the node's first measured request. */
  latencyMs?: number;
}


/** The node's points from `fromMs` to `toMs`, oldest first: one read by `_id` per day spanned. */
export async function readNodeHistory(db: Db, nodeId: string, fromMs: number, toMs: number): Promise<NodeHistoryPoint[]> {
  const days: string[] = [];
  for (let day = fromMs - (fromMs % dayMs); day <= toMs; day += dayMs) days.push(nodeHistoryDayId(nodeId, day));
  const history = store(db).nodeHistory;
  const docs = await Promise.all(days.map((_id) => history.findOne({ _id })));
  return docs
    .flatMap((d) => Object.values(d?.points ?? {}))
    .filter((p) => p.at.getTime() >= fromMs && p.at.getTime() <= toMs)
    .sort((a, b) => a.at.getTime() - b.at.getTime());
}


export interface ProjectResult {
  /** False when the stored document was already as new or newer: the write was a no-op. */
  applied: boolean;
}


/**
 * Projection activities, given their database (dependency injection, so tests pass their own).
 *
 * @example
 * const worker = await Worker.create({ ..., activities: createNodeProjectionActivities(mongo.db) });
 */
export function createNodeProjectionActivities(db: Db) {
  const nodes = store(db).nodes;
  const history = store(db).nodeHistory;

  /** The snapshot as its bucket's point. Keyed by bucket, so a retry rewrites the same point. */
  const recordHistory = async (snapshot: NodeSnapshot) => {
    const bucket = snapshot.updatedAt - (snapshot.updatedAt % nodeHistoryBucketMs);
    const point: NodeHistoryPoint = {
      at: new Date(bucket),
      reputation: snapshot.reputation,
      tokensPerSecond: snapshot.record.tokensPerSecondEma,
      latencyMs: snapshot.record.latencyEmaMs,
      requestsServed: snapshot.record.requestsServed,
    };
    try {
      // The actor projects one snapshot at a time, so its day's document has one writer.
      await history.updateOne(
        { _id: nodeHistoryDayId(snapshot.nodeId, bucket) },
        { $set: { [`points.b${bucket}`]: point }, $setOnInsert: { nodeId: snapshot.nodeId, day: new Date(bucket - (bucket % dayMs)) } },
        { upsert: true },
      );
    } catch (err) {
      // Two upserts of a new day at once (FerretDB): the other one wrote it; this point waits for the next projection.
      if (!isDuplicateKey(err)) throw err;
    }
  };

  return {
    /**
     * Upserts the node's document unless the stored one is at least as new. Idempotent: a
     * retried or late activity carrying an older version changes nothing.
     */
    async projectNodeState(snapshot: NodeSnapshot): Promise<ProjectResult> {
      const doc = {
        operator: snapshot.operator,
        models: snapshot.models,
        state: snapshot.state,
        resumeState: snapshot.resumeState ?? null,
        reputation: snapshot.reputation,
        record: snapshot.record,
        version: snapshot.version,
        updatedAt: new Date(snapshot.updatedAt),
        checks: snapshot.checks ?? [],
      };
      try {
        // The version guard makes the write conditional. When the document exists with a newer
        // (or equal) version, the filter matches nothing and the upsert tries to insert a second
        // document with the same _id, which the unique _id index refuses: that refusal is the
        // "stale, skipped" answer. Only plain $set and an $lt filter: both work on FerretDB 1.x.
        // On MongoDB the guard is atomic; FerretDB 1.x matches and writes in two steps, so there
        // it holds only between writes that do not overlap, which the actor's are (it projects
        // one snapshot at a time).
        const result = await nodes.updateOne({ _id: snapshot.nodeId, version: { $lt: snapshot.version } }, { $set: doc }, { upsert: true });
        const applied = result.matchedCount > 0 || result.upsertedCount > 0;
        if (applied) await recordHistory(snapshot);
        return { applied };
      } catch (err) {
        if (isDuplicateKey(err)) return { applied: false };
        throw err;
      }
    },

    /**
     * The medians of time to first token and tokens per second among other nodes serving any of
     * `models` (measured ones, not suspended or retired): what a node's performance is judged
     * against. 0 where no peer has a measurement; null without any peer.
     */
    async peerMedians(input: { nodeId: string; models: string[] }): Promise<PeerMedians | null> {
      const latencies: number[] = [];
      const speeds: number[] = [];
      const peers = nodes.find(
        { _id: { $ne: input.nodeId }, models: { $in: input.models }, state: { $nin: ['suspended', 'retired'] } },
        { projection: { 'record.latencyEmaMs': 1, 'record.tokensPerSecondEma': 1 } },
      ).limit(5_000);
      for await (const doc of peers) {
        const { latencyEmaMs, tokensPerSecondEma } = doc.record ?? {};
        if (typeof latencyEmaMs === 'number' && latencyEmaMs > 0) latencies.push(latencyEmaMs);
        if (typeof tokensPerSecondEma === 'number' && tokensPerSecondEma > 0) speeds.push(tokensPerSecondEma);
      }
      if (!latencies.length && !speeds.length) return null;
      return { latencyMs: median(latencies), tokensPerSecond: median(speeds) };
    },

    /**
     * The projected state of each node asked for, keyed by node id; a node with no document
     * (never projected, or unknown) has no key, so a lookup gives undefined.
     */
    async getNodeStates(nodeIds: string[]): Promise<Record<string, NodeStateView>> {
      const out: Record<string, NodeStateView> = {};
      if (nodeIds.length === 0) return out;
      const docs = nodes.find(
        { _id: { $in: [...new Set(nodeIds)] } },
        { projection: { state: 1, reputation: 1, 'record.latencyEmaMs': 1 } },
      );
      for await (const doc of docs) {
        const view: NodeStateView = { nodeId: doc._id, state: doc.state, reputation: doc.reputation };
        const latency = doc.record?.latencyEmaMs;
        if (typeof latency === 'number') view.latencyMs = latency;
        out[doc._id] = view;
      }
      return out;
    },
  };
}

export type NodeProjectionActivities = ReturnType<typeof createNodeProjectionActivities>;

function median(values: number[]): number {
  if (!values.length) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
