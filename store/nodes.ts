/**
 * What the node actors project (activities/node-projection.ts): `nodes`, a read model of every
 * node actor's state, and `node_history`, a small rollup of each node's standing over time.
 */
import type { NodeRecord, NodeState, OnlineState } from '../domain/reputation.ts';
import { storedCollection } from './collection.ts';

/** One node, as its actor last projected it. */
export interface NodeDocument {
  _id: string;
  operator: string;
  models: string[];
  state: NodeState;
  /** See NodeSnapshot.resumeState; absent from documents written before it was projected. */
  resumeState?: OnlineState | null;
  reputation: number;
  record: NodeRecord;
  version: number;
  updatedAt: Date;
  /** See NodeSnapshot.checks; absent from documents written before they were projected. */
  checks?: NodeCheck[];
}

/** A spot check's verdict on one of the node's answers, as its actor counted it. */
export interface NodeCheck {
  at: number;
  passed: boolean;
}

/**
 * A node's standing over time, for its status page: one point per node per bucket, overwritten
 * by every projection within that bucket (so the newest in it wins). A small rollup, not a log,
 * stored as one document per node per UTC day holding that day's points keyed by bucket: a
 * node's last 48 hours are three reads by `_id`, the one lookup FerretDB serves from an index
 * (it scans the whole collection for any other filter).
 */
export const nodeHistoryBucketMs = 5 * 60_000;
export const dayMs = 86_400_000;

export interface NodeHistoryPoint {
  at: Date;
  reputation: number;
  tokensPerSecond: number | null;
  latencyMs: number | null;
  requestsServed: number;
}

/** One node's points of one UTC day. */
export interface NodeHistoryDay {
  _id: string; // `${nodeId}:${day start ms}`
  nodeId: string;
  day: Date;
  /** Keyed `b${bucket start ms}`. */
  points: Record<string, NodeHistoryPoint>;
}

export const nodeHistoryDayId = (nodeId: string, atMs: number) => `${nodeId}:${atMs - (atMs % dayMs)}`;

export const nodes = storedCollection<NodeDocument>('nodes');

// Read by `_id` only (see NodeHistoryDay).
export const nodeHistory = storedCollection<NodeHistoryDay>('node_history');
