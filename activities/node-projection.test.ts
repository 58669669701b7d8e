/** The projection against the real MongoDB-wire server (FerretDB here): versioned upserts. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMongo, type MongoHandle } from '../connections/mongo.ts';
import { newNodeRecord } from '../domain/reputation.ts';
import { stack, unique } from '../test/helpers.ts';
import { createNodeProjectionActivities, readNodeHistory, type NodeSnapshot } from './node-projection.ts';
import { nodeHistoryBucketMs, store } from '../store/index.ts';

let mongo: MongoHandle;
beforeAll(async () => {
  mongo = await connectMongo(stack().mongodbUri, unique('node-projection'));
});
afterAll(async () => {
  await mongo?.db.dropDatabase();
  await mongo?.[Symbol.asyncDispose]();
});

const t0 = 1_700_000_000_000;
function snapshot(nodeId: string, version: number, extra: Partial<NodeSnapshot> = {}): NodeSnapshot {
  return {
    nodeId,
    operator: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8',
    models: ['gitblock-tiny'],
    state: 'probation',
    reputation: 0.5,
    record: newNodeRecord(t0),
    version,
    updatedAt: t0 + version,
    ...extra,
  };
}

describe('projectNodeState', () => {
  it('inserts the first snapshot, applies newer ones and ignores older or repeated ones', async () => {
    const { projectNodeState } = createNodeProjectionActivities(mongo.db);
    const nodes = store(mongo.db).nodes;
    const nodeId = unique('node');

    expect(await projectNodeState(snapshot(nodeId, 5))).toEqual({ applied: true });
    expect(await projectNodeState(snapshot(nodeId, 7, { state: 'active', reputation: 0.6 }))).toEqual({ applied: true });
    // A retry of an older write that lands late, and a repeat of the current one.
    expect(await projectNodeState(snapshot(nodeId, 6, { state: 'suspended' }))).toEqual({ applied: false });
    expect(await projectNodeState(snapshot(nodeId, 7, { state: 'degraded' }))).toEqual({ applied: false });

    const docs = await nodes.find({ _id: nodeId }).toArray();
    expect(docs).toHaveLength(1);
    expect(docs[0]).toMatchObject({ _id: nodeId, state: 'active', reputation: 0.6, version: 7, updatedAt: new Date(t0 + 7) });
    expect(docs[0]?.record).toEqual(newNodeRecord(t0));
  });

  it('keeps one history point per bucket, the newest applied snapshot in it; a stale write adds none', async () => {
    const { projectNodeState } = createNodeProjectionActivities(mongo.db);
    const nodeId = unique('node');
    const bucket0 = t0 - (t0 % nodeHistoryBucketMs);
    await projectNodeState(snapshot(nodeId, 1, { reputation: 0.5, updatedAt: bucket0 + 1 }));
    await projectNodeState(snapshot(nodeId, 2, { reputation: 0.55, updatedAt: bucket0 + 2 }));
    await projectNodeState(snapshot(nodeId, 3, { reputation: 0.6, updatedAt: bucket0 + nodeHistoryBucketMs + 1 }));
    // Stale: an older version arriving late writes no point, not even into its own bucket.
    await projectNodeState(snapshot(nodeId, 1, { reputation: 0.1, updatedAt: bucket0 + 3 * nodeHistoryBucketMs }));

    const points = await readNodeHistory(mongo.db, nodeId, bucket0 - 86_400_000, bucket0 + 86_400_000);
    expect(points.map((p) => [p.at.getTime(), p.reputation])).toEqual([
      [bucket0, 0.55],
      [bucket0 + nodeHistoryBucketMs, 0.6],
    ]);
    // One document per node per day, read by _id (FerretDB serves no other filter from an index).
    expect(await store(mongo.db).nodeHistory.countDocuments({ nodeId })).toBe(1);
    // The window bounds the points: one from the first bucket only.
    expect((await readNodeHistory(mongo.db, nodeId, bucket0, bucket0 + 1)).map((p) => p.reputation)).toEqual([0.55]);
  });

  it('projects the latest spot-check verdicts with the standing, for the node page', async () => {
    const { projectNodeState } = createNodeProjectionActivities(mongo.db);
    const nodeId = unique('node');
    const checks = [
      { at: t0 + 1, passed: true },
      { at: t0 + 2, passed: false },
    ];
    await projectNodeState(snapshot(nodeId, 1, { checks }));
    expect((await store(mongo.db).nodes.findOne({ _id: nodeId }))?.checks).toEqual(checks);
    // An actor from before verdicts were projected sends none: the list is empty, not stale.
    await projectNodeState(snapshot(nodeId, 2));
    expect((await store(mongo.db).nodes.findOne({ _id: nodeId }))?.checks).toEqual([]);
  });

  it('keeps one document under concurrent writers (on MongoDB, the newest version winning)', async () => {
    const { projectNodeState } = createNodeProjectionActivities(mongo.db);
    const nodeId = unique('node');
    const versions = Array.from({ length: 12 }, (_, i) => i + 1).sort(() => 0.5 - Math.random());
    await Promise.all(versions.map((v) => projectNodeState(snapshot(nodeId, v))));
    const docs = await store(mongo.db).nodes.find({ _id: nodeId }).toArray();
    expect(docs).toHaveLength(1);
    // FerretDB 1.x (SQLite) matches the filter and writes in two steps, so truly concurrent
    // writers can let an older version land last; MongoDB's single-document atomicity makes the
    // guard exact. The actor never writes concurrently (one projection at a time), so only an
    // abandoned activity attempt still running past its timeout could race there.
    const buildInfo = await mongo.db.admin().command({ buildInfo: 1 });
    if (!('ferretdbVersion' in buildInfo)) expect(docs[0]?.version).toBe(12);
  });
});

describe('getNodeStates', () => {
  it("returns each known node's state, reputation and latency; unknown ones are absent", async () => {
    const { projectNodeState, getNodeStates } = createNodeProjectionActivities(mongo.db);
    const [a, b, missing] = [unique('node'), unique('node'), unique('node')];
    await projectNodeState(snapshot(a, 1, { state: 'active', reputation: 0.7, record: { ...newNodeRecord(t0), latencyEmaMs: 123 } }));
    await projectNodeState(snapshot(b, 1, { state: 'suspended', reputation: 0.2 }));

    const states = await getNodeStates([a, b, missing, a]);
    expect(states[a]).toEqual({ nodeId: a, state: 'active', reputation: 0.7, latencyMs: 123 });
    expect(states[b]).toEqual({ nodeId: b, state: 'suspended', reputation: 0.2 });
    expect(states[missing]).toBeUndefined();
    expect(await getNodeStates([])).toEqual({});
  });
});

describe('peerMedians', () => {
  it('takes the medians of measured nodes that share a model, leaving out the node itself and suspended ones', async () => {
    const { projectNodeState, peerMedians } = createNodeProjectionActivities(mongo.db);
    const model = unique('model');
    const measured = (latencyEmaMs: number | null, tokensPerSecondEma: number | null) => ({ ...newNodeRecord(t0), latencyEmaMs, tokensPerSecondEma });
    const [self, p1, p2, p3, suspended, other] = ['self', 'p1', 'p2', 'p3', 'susp', 'other'].map((n) => unique(n));
    await projectNodeState(snapshot(self!, 1, { models: [model], record: measured(1, 1) }));
    await projectNodeState(snapshot(p1!, 1, { models: [model, 'x'], record: measured(100, 10) }));
    await projectNodeState(snapshot(p2!, 1, { models: [model], record: measured(300, 30) }));
    await projectNodeState(snapshot(p3!, 1, { models: [model], record: measured(null, 50) }));
    await projectNodeState(snapshot(suspended!, 1, { models: [model], state: 'suspended', record: measured(5, 5000) }));
    await projectNodeState(snapshot(other!, 1, { models: [unique('model')], record: measured(9000, 1) }));

    expect(await peerMedians({ nodeId: self!, models: [model] })).toEqual({ latencyMs: 200, tokensPerSecond: 30 });
    expect(await peerMedians({ nodeId: self!, models: [unique('model')] })).toBeNull();
  });
});
