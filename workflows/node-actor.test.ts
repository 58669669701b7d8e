/**
 * The node actor on the real stack: Temporal dev server, and FerretDB for the projection.
 * Each test has its own task queue, database and node id.
 */
import type { Client, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import type { Db } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeProjectionActivities, type NodeSnapshot } from '../activities/node-projection.ts';
import { connectMongo, type MongoHandle } from '../connections/mongo.ts';
import { connectTemporalClient, connectWorker } from '../connections/temporal.ts';
import { newNodeRecord, PROBATION_REQUESTS, RECOVERY_REQUESTS, reputation } from '../domain/reputation.ts';
import { stack, unique, workflowBundle } from '../test/helpers.ts';
import { workflowIds } from '../temporal.config.ts';
import {
  deregisteredSignal,
  nodeActorWorkflow,
  operatorActionSignal,
  registeredSignal,
  requestOutcomeSignal,
  stateQuery,
  verificationVerdictSignal,
  type NodeActorInput,
} from './node-actor.ts';
import { type NodeDocument, store } from '../store/index.ts';

const operator = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';

let client: Client & AsyncDisposable;
let mongo: MongoHandle;

beforeAll(async () => {
  client = await connectTemporalClient({ address: stack().temporalAddress, namespace: stack().temporalNamespace });
  // One client; each test gets its own database on it.
  mongo = await connectMongo(stack().mongodbUri, unique('node-actor'));
});
afterAll(async () => {
  await mongo?.db.dropDatabase();
  await mongo?.[Symbol.asyncDispose]();
  await client?.[Symbol.asyncDispose]();
});

interface Actor {
  handle: WorkflowHandleWithFirstExecutionRunId<typeof nodeActorWorkflow>;
  nodeId: string;
  /** The projected document, as FerretDB has it now. */
  doc(): Promise<NodeDocument | null>;
  /** The test's own database, which the actor projects into. */
  db: Db;
  /** Snapshots the projection activity was called with, in order. */
  projections: NodeSnapshot[];
  ok(requestId?: string, extra?: { latencyMs?: number; tokensPerSecond?: number }): Promise<void>;
  fail(requestId?: string): Promise<void>;
  verdict(passed: boolean, requestId?: string): Promise<void>;
}

let requestCounter = 0;
const nextRequestId = () => `req-${++requestCounter}`;

/** Runs `body` with a worker on a fresh task queue and database, and a started node actor. */
async function withActor(body: (actor: Actor) => Promise<void>, options: Partial<NodeActorInput> = {}, extraActivities: Record<string, (...args: never[]) => Promise<unknown>> = {}): Promise<void> {
  const taskQueue = unique('node-actor');
  const nodeId = unique('node');
  const db = mongo.client.db(unique('nodes'));
  const real = createNodeProjectionActivities(db);
  const projections: NodeSnapshot[] = [];
  const worker = await Worker.create({
    connection: await connectWorker({ address: stack().temporalAddress, namespace: stack().temporalNamespace }),
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: {
      ...real,
      async projectNodeState(snapshot: NodeSnapshot) {
        projections.push(snapshot);
        return real.projectNodeState(snapshot);
      },
      ...extraActivities,
    },
  });
  const handle = await client.workflow.start(nodeActorWorkflow, {
    taskQueue,
    workflowId: workflowIds.node(nodeId),
    args: [{ nodeId, operator, models: ['gitblock-tiny'], ...options }],
  });
  const actor: Actor = {
    handle,
    nodeId,
    projections,
    doc: () => store(db).nodes.findOne({ _id: nodeId }),
    db,
    ok: (requestId = nextRequestId(), extra = {}) => handle.signal(requestOutcomeSignal, { requestId, ok: true, latencyMs: 120, tokensPerSecond: 40, at: Date.now(), ...extra }),
    fail: (requestId = nextRequestId()) => handle.signal(requestOutcomeSignal, { requestId, ok: false, at: Date.now() }),
    verdict: (passed, requestId = nextRequestId()) => handle.signal(verificationVerdictSignal, { requestId, passed, at: Date.now() }),
  };
  try {
    await worker.runUntil(body(actor));
  } finally {
    await handle.terminate('test over').catch(() => undefined);
    await db.dropDatabase();
  }
}

/** Polls until `check` holds, or fails with the last value seen. */
async function waitFor<T>(read: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 8_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!check(value)) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 50));
    value = await read();
  }
  return value;
}

const times = async (n: number, f: () => Promise<void>) => {
  for (let i = 0; i < n; i++) await f();
};

describe('the node actor', () => {
  it('projects a new node on probation, and makes it active after the probation threshold', async () => {
    await withActor(async (actor) => {
      const first = await waitFor(actor.doc, (d) => d !== null);
      expect(first).toMatchObject({ _id: actor.nodeId, operator, models: ['gitblock-tiny'], state: 'probation' });
      expect(first?.reputation).toBeCloseTo(0.5, 9);

      await times(PROBATION_REQUESTS - 1, () => actor.ok());
      expect((await actor.handle.query(stateQuery)).state).toBe('probation');
      await actor.ok();
      const view = await actor.handle.query(stateQuery);
      expect(view.state).toBe('active');
      expect(view.record).toMatchObject({ requestsServed: PROBATION_REQUESTS, failures: 0, latencyEmaMs: 120, tokensPerSecondEma: 40 });
      expect(view.reputation).toBeGreaterThan(0.5);

      const doc = await waitFor(actor.doc, (d) => d?.state === 'active');
      expect(doc?.record.requestsServed).toBe(PROBATION_REQUESTS);
      expect(doc?.updatedAt).toBeInstanceOf(Date);
    });
  });

  it('judges latency and throughput against the peers serving the same model', async () => {
    await withActor(async (actor) => {
      await waitFor(actor.doc, (d) => d !== null);
      // A peer twice as slow to first token and half as fast: this node should rank above parity.
      await store(actor.db).nodes.insertOne({
        _id: unique('peer'),
        operator,
        models: ['gitblock-tiny'],
        state: 'active',
        reputation: 0.5,
        record: { ...newNodeRecord(Date.now()), latencyEmaMs: 240, tokensPerSecondEma: 20 },
        version: 1,
        updatedAt: new Date(),
      });
      await actor.ok();
      await waitFor(actor.doc, (d) => d?.record.requestsServed === 1);
      await actor.ok();
      const doc = await waitFor(actor.doc, (d) => d?.record.requestsServed === 2);
      const alone = reputation(doc!.record);
      expect(doc!.reputation).toBeCloseTo(reputation(doc!.record, { latencyMs: 240, tokensPerSecond: 20 }), 9);
      expect(doc!.reputation).toBeGreaterThan(alone);
    });
  });

  it('samples its heartbeat while registered and counts the live share as uptime', async () => {
    let live = true;
    const asked: string[] = [];
    const nodeLive = async ({ nodeId }: { nodeId: string }) => {
      asked.push(nodeId);
      return live;
    };
    await withActor(
      async (actor) => {
        const up = await waitFor(actor.doc, (d) => (d?.record.uptimeLive ?? 0) >= 2);
        expect(up?.record.uptimeLive).toBe(up?.record.uptimeChecks);
        live = false;
        const down = await waitFor(actor.doc, (d) => (d?.record.uptimeChecks ?? 0) - (d?.record.uptimeLive ?? 0) >= 3);
        expect(down!.reputation).toBeLessThan(up!.reputation);
        expect(new Set(asked)).toEqual(new Set([actor.nodeId]));
        // Deregistered, it is not sampled: being away on purpose is not downtime.
        await actor.handle.signal(deregisteredSignal, { reason: 'operator stopped it', at: Date.now() });
        await waitFor(async () => (await actor.handle.query(stateQuery)).state, (s) => s === 'offline');
        // A sample already on its way when the signal came may still land.
        await new Promise((r) => setTimeout(r, 300));
        const count = asked.length;
        await new Promise((r) => setTimeout(r, 800));
        expect(asked.length).toBe(count);
      },
      { livenessIntervalMs: 150 },
      { nodeLive },
    );
  });

  it('batches projections: a burst of signals costs a few writes, not one each', async () => {
    await withActor(async (actor) => {
      await waitFor(async () => actor.projections.length, (n) => n >= 1);
      // 10 signals below the threshold: no lifecycle change, so they share one paced write.
      await Promise.all(Array.from({ length: 10 }, () => actor.ok()));
      const doc = await waitFor(actor.doc, (d) => d?.record.requestsServed === 10);
      expect(doc?.state).toBe('probation');
      expect(actor.projections.length).toBeLessThanOrEqual(3);
      const versions = actor.projections.map((p) => p.version);
      expect(versions).toEqual([...versions].sort((a, b) => a - b));
      expect(new Set(versions).size).toBe(versions.length);
    });
  });

  it('degrades a node whose requests fail, and brings it back after clean requests', async () => {
    await withActor(async (actor) => {
      await times(PROBATION_REQUESTS, () => actor.ok());
      await times(3, () => actor.fail());
      const degraded = await actor.handle.query(stateQuery);
      expect(degraded.state).toBe('degraded');
      expect(degraded.record.failures).toBe(3);
      await waitFor(actor.doc, (d) => d?.state === 'degraded');

      await times(RECOVERY_REQUESTS - 1, () => actor.ok());
      expect((await actor.handle.query(stateQuery)).state).toBe('degraded');
      await actor.ok();
      expect((await actor.handle.query(stateQuery)).state).toBe('active');
      await waitFor(actor.doc, (d) => d?.state === 'active');
    });
  });

  it('suspends after three failed verdicts, projects it within seconds, and an operator reinstates it', async () => {
    await withActor(async (actor) => {
      await times(PROBATION_REQUESTS, () => actor.ok());
      await waitFor(actor.doc, (d) => d?.state === 'active');
      // Interleaved with passes so that it is the total, not the two-in-a-row rule, that trips.
      await actor.verdict(false);
      await actor.verdict(true);
      await actor.verdict(false);
      await actor.verdict(true);
      expect((await actor.handle.query(stateQuery)).state).toBe('degraded');
      // Wait for a projection to go out, so the actor is in its pacing wait, then the deciding verdict.
      await times(5, () => actor.ok());
      await waitFor(async () => actor.projections.at(-1), (p) => p?.record.requestsServed === PROBATION_REQUESTS + 5);
      const paced = actor.projections.at(-1)!;
      const sent = Date.now();
      await actor.verdict(false);
      const doc = await waitFor(actor.doc, (d) => d?.state === 'suspended', 3_000);
      expect(Date.now() - sent).toBeLessThan(3_000);
      // The suspension did not wait out the projection interval (2 s, on the workflow's clock).
      const suspended = actor.projections.find((p) => p.state === 'suspended')!;
      expect(suspended.updatedAt - paced.updatedAt).toBeLessThan(1_500);
      expect(doc?.record).toMatchObject({ verificationFailures: 3, verificationPasses: 2 });
      expect(doc?.reputation).toBeLessThan(0.5);

      // Nothing the node does lifts a suspension.
      await times(RECOVERY_REQUESTS, () => actor.ok());
      await actor.handle.signal(deregisteredSignal, { at: Date.now(), reason: 'restart' });
      await actor.handle.signal(registeredSignal, { models: ['gitblock-tiny'], at: Date.now() });
      expect((await actor.handle.query(stateQuery)).state).toBe('suspended');

      await actor.handle.signal(operatorActionSignal, { action: 'reinstate', at: Date.now() });
      const reinstated = await actor.handle.query(stateQuery);
      expect(reinstated.state).toBe('probation');
      expect(reinstated.record.strikes).toBe(0);
      await waitFor(actor.doc, (d) => d?.state === 'probation', 3_000);
    });
  });

  it('counts a re-sent outcome or verdict once', async () => {
    await withActor(async (actor) => {
      await actor.ok('req-dup-1');
      await actor.ok('req-dup-1');
      await actor.fail('req-dup-2');
      await actor.fail('req-dup-2');
      await actor.verdict(true, 'req-dup-1');
      await actor.verdict(true, 'req-dup-1');
      const { record } = await actor.handle.query(stateQuery);
      expect(record).toMatchObject({ requestsServed: 1, failures: 1, verificationPasses: 1 });
      await waitFor(actor.doc, (d) => d?.record.failures === 1 && d.record.verificationPasses === 1);
    });
  });

  it('goes offline on deregistration and comes back to its state with new models', async () => {
    await withActor(async (actor) => {
      await times(PROBATION_REQUESTS, () => actor.ok());
      await actor.handle.signal(deregisteredSignal, { at: Date.now(), reason: 'operator shutdown' });
      const offline = await actor.handle.query(stateQuery);
      expect(offline).toMatchObject({ state: 'offline', resumeState: 'active', offlineReason: 'operator shutdown' });
      await waitFor(actor.doc, (d) => d?.state === 'offline');
      await actor.handle.signal(registeredSignal, { models: ['gitblock-tiny', 'smollm2-135m'], at: Date.now() });
      await waitFor(actor.doc, (d) => d?.state === 'active' && d.models.length === 2);
    });
  });

  it('continues as new with its record, and keeps dropping duplicates across runs', async () => {
    await withActor(
      async (actor) => {
        const firstRunId = actor.handle.firstExecutionRunId;
        await times(12, () => actor.ok());
        await actor.verdict(true, 'req-can-verdict');
        const runId = await waitFor(
          async () => (await client.workflow.getHandle(actor.handle.workflowId).describe()).runId,
          (id) => id !== firstRunId,
        );
        expect(runId).not.toBe(firstRunId);
        // Re-send ids the first run counted: still counted once.
        await actor.ok(`req-${requestCounter}`);
        await actor.verdict(true, 'req-can-verdict');
        const view = await actor.handle.query(stateQuery);
        expect(view.record).toMatchObject({ requestsServed: 12, verificationPasses: 1 });
        expect(view.state).toBe('probation');
        // And it keeps going: the threshold is reached across runs.
        await times(PROBATION_REQUESTS - 12, () => actor.ok());
        expect((await actor.handle.query(stateQuery)).state).toBe('active');
        const doc = await waitFor(actor.doc, (d) => d?.state === 'active');
        expect(doc?.record.requestsServed).toBe(PROBATION_REQUESTS);
        const versions = actor.projections.map((p) => p.version);
        expect(new Set(versions).size).toBe(versions.length);
      },
      { maxSignalsBeforeContinue: 5 },
    );
  });

  it('loses no signal to continue-as-new under a burst', async () => {
    await withActor(
      async (actor) => {
        // Sent concurrently, so signals keep arriving while runs are closing.
        await Promise.all([...Array.from({ length: 40 }, () => actor.ok()), ...Array.from({ length: 20 }, () => actor.fail())]);
        const doc = await waitFor(actor.doc, (d) => d !== null && d.record.requestsServed + d.record.failures === 60);
        expect(doc?.record).toMatchObject({ requestsServed: 40, failures: 20 });
        expect((await actor.handle.query(stateQuery)).record).toMatchObject({ requestsServed: 40, failures: 20 });
        expect((await client.workflow.getHandle(actor.handle.workflowId).describe()).runId).not.toBe(actor.handle.firstExecutionRunId);
      },
      { maxSignalsBeforeContinue: 7 },
    );
  });

  it('ends on retire after a final projection', async () => {
    await withActor(async (actor) => {
      await times(3, () => actor.ok());
      await actor.handle.signal(operatorActionSignal, { action: 'retire', at: Date.now() });
      const final = await actor.handle.result();
      expect(final.state).toBe('retired');
      expect(final.record.requestsServed).toBe(3);
      const doc = await actor.doc();
      expect(doc).toMatchObject({ state: 'retired', record: { requestsServed: 3 } });
      expect((await actor.handle.describe()).status.name).toBe('COMPLETED');
    });
  });
});
