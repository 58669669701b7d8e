/**
 * A dependency away, for real: the gateway's NATS connection closed under it, or its MongoDB
 * a port where nothing listens. The client gets a 503 `upstream_unavailable` with
 * `Retry-After` and a request id within a few seconds, and nothing is left behind: no request
 * record stuck in `routing`, no quota held.
 */
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { MongoClient, type Db } from 'mongodb';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LiveNodes } from '../activities/live-nodes.ts';
import { NodeStandings } from '../activities/node-standings.ts';
import { connectMongo, type MongoHandle } from '../connections/mongo.ts';
import { connectNats } from '../connections/nats.ts';
import { ensureTokenStream, nodesKv } from '../connections/streams.ts';
import { connectTemporalClient } from '../connections/temporal.ts';
import type { Heartbeat } from '../domain/heartbeat.ts';
import { stack, unique } from '../test/helpers.ts';
import { buildApp } from './app.ts';
import { ApiKeys } from './keys/keys.ts';
import { createMetrics } from './metrics.ts';
import { RegisteredNodes } from './registered-nodes.ts';

import { MongoNonceStore } from './registration/mongo-nonces.ts';
import { store, type RegistrationDoc } from '../store/index.ts';

let mongo: MongoHandle;
let temporal: Awaited<ReturnType<typeof connectTemporalClient>>;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  const s = stack();
  mongo = await connectMongo(s.mongodbUri, unique('unavailable'));
  temporal = await connectTemporalClient({ address: s.temporalAddress, namespace: s.temporalNamespace });
});
afterAll(async () => {
  for (const f of cleanups.reverse()) await f();
  await mongo.db.dropDatabase().catch(() => {});
  await mongo[Symbol.asyncDispose]();
  await temporal[Symbol.asyncDispose]();
});

/** A registered node's heartbeat in the bucket, as a live node writes it: admission lets requests through. */
async function liveNode(nc: NatsConnection, db: Db): Promise<string> {
  const nodeId = unique('unavail-node');
  await store(db).registrations.insertOne({ _id: nodeId, operator: `0x${'1'.repeat(40)}` } as RegistrationDoc); // only what admission reads
  const beat: Heartbeat = {
    nodeId,
    operator: `0x${'1'.repeat(40)}`,
    version: 'test',
    status: 'serving',
    gpu: { backend: 'cpu', devices: [] },
    models: [{ id: 'gitblock-tiny', hash: 'a'.repeat(64), contextSize: 2048, slots: 2 }],
    maxParallel: 2,
    inFlight: 0,
    freeSlots: 2,
    recentTokensPerSecond: 0,
    freeMemoryBytes: 1e9,
    at: Date.now(),
  };
  await (await nodesKv(nc)).put(nodeId, JSON.stringify(beat));
  return nodeId;
}

/** The gateway app on these connections, as server.ts wires it. */
async function gateway(nc: NatsConnection, db: Db, views: { nc: NatsConnection; db: Db } = { nc, db }) {
  const keys = new ApiKeys(db);
  const registered = new RegisteredNodes(views.db);
  await registered.refresh();
  const liveNodes = new LiveNodes(await nodesKv(views.nc)).restrictTo((id) => registered.has(id));
  await liveNodes.whenReady();
  const standings = await new NodeStandings(views.db).start();
  const app = await buildApp({
    temporal,
    nc,
    js: jetstream(nc),
    db,
    keys,
    liveNodes,
    registered,
    standings,
    nonces: new MongoNonceStore(db),
    metrics: createMetrics(),
    chainId: 31337,
    controlTaskQueue: unique('control'),
    keysPerHourPerAddress: 10,
  });
  cleanups.push(() => app.close(), () => liveNodes.stop(), () => registered.stop(), () => standings.stop());
  return { app, keys, registered, liveNodes };
}

const ask = (stream: boolean) => JSON.stringify({ model: 'gitblock-tiny', messages: [{ role: 'user', content: 'hello' }], max_tokens: 16, stream });

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

describe('NATS away', () => {
  it('answers 503 upstream_unavailable with retry-after and a request id at once, and leaves no record routing and no quota held', async () => {
    const nc = await connectNats(stack().natsUrl, 'unavailable-test');
    await ensureTokenStream(nc);
    const nodeId = await liveNode(nc, mongo.db);
    const { app, keys, liveNodes } = await gateway(nc, mongo.db);
    for (let i = 0; i < 50 && !liveNodes.get(nodeId); i++) await new Promise((r) => setTimeout(r, 100));
    expect(liveNodes.get(nodeId)).toBeDefined();
    const issued = await keys.issue('nats-away');
    await nc.close(); // the gateway's connection goes down under it

    for (const stream of [true, false]) {
      const started = Date.now();
      const res = await app.inject({ method: 'POST', url: '/v1/chat/completions', headers: { authorization: `Bearer ${issued.key}`, 'content-type': 'application/json' }, payload: ask(stream) });
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ error: { code: 'upstream_unavailable', type: 'server_error' } });
      expect(res.headers['retry-after']).toBe('5');
      const requestId = res.headers['x-gitblock-request-id'];
      expect(requestId).toMatch(/^[0-9a-f]{24}$/);
      const record = await store(mongo.db).requests.findOne({ _id: String(requestId) });
      expect(record === null || record.status === 'failed').toBe(true);
    }
    expect(await store(mongo.db).requests.countDocuments({ status: 'routing' })).toBe(0);
    expect((await keys.usage(issued.id)).usedTokens).toBe(0);
  });
});

describe('MongoDB away', () => {
  it('answers 503 upstream_unavailable with retry-after within a few seconds, on inference and elsewhere', async () => {
    // The same client options as connectMongo; the port has nothing behind it.
    const dead = new MongoClient(`mongodb://127.0.0.1:${await freePort()}/`, { serverSelectionTimeoutMS: 5_000, connectTimeoutMS: 5_000 });
    cleanups.push(() => dead.close());
    const nc = await connectNats(stack().natsUrl, 'unavailable-test-mongo');
    cleanups.push(() => nc.close());
    const deadDb = dead.db('gitblock');
    // The gateway's node views were filled while MongoDB was up; its MongoDB is now away.
    await liveNode(nc, mongo.db);
    const { app } = await gateway(nc, deadDb, { nc, db: mongo.db });

    const started = Date.now();
    const res = await app.inject({ method: 'POST', url: '/v1/chat/completions', headers: { authorization: `Bearer gb-${'A'.repeat(43)}`, 'content-type': 'application/json' }, payload: ask(true) });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ error: { code: 'upstream_unavailable' } });
    expect(res.headers['retry-after']).toBe('5');
    expect(res.headers['x-gitblock-request-id']).toMatch(/^[0-9a-f]{24}$/);

    // Any other route that reads MongoDB says the same through the error handler, not a 500.
    const other = await app.inject({ method: 'POST', url: '/v1/keys', headers: { 'content-type': 'application/json' }, payload: '{}' });
    expect(other.statusCode).toBe(503);
    expect(other.json()).toMatchObject({ error: { code: 'upstream_unavailable' } });
    expect(other.headers['retry-after']).toBe('5');
  }, 30_000);
});
