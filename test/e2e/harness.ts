/**
 * The whole network for end-to-end tests: the control worker and the gateway in this process
 * (each on this test file's own task queue and database), GPU nodes as real processes.
 */
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { FastifyInstance } from 'fastify';
import { LiveNodes } from '../../activities/live-nodes.ts';
import { chainClient } from '../../connections/chain.ts';
import { connectMongo, type MongoHandle } from '../../connections/mongo.ts';
import { connectNats } from '../../connections/nats.ts';
import { ensureTokenStream, nodesKv } from '../../connections/streams.ts';
import { connectTemporalClient } from '../../connections/temporal.ts';
import { buildApp } from '../../gateway/app.ts';
import type { GatewayDeps } from '../../gateway/deps.ts';
import { ApiKeys, type KeyPolicy } from '../../gateway/keys/keys.ts';
import { createMetrics } from '../../gateway/metrics.ts';
import { RegisteredNodes } from '../../gateway/registered-nodes.ts';
import { MongoNonceStore } from '../../gateway/registration/mongo-nonces.ts';
import { startControlWorker, type ControlWorker } from '../../workers/control.ts';
import { stack, unique, workflowBundle } from '../helpers.ts';
import { startNodeProcess, type NodeProcess } from '../node-process.ts';

export interface Network {
  url: string;
  app: FastifyInstance;
  mongo: MongoHandle;
  nc: NatsConnection;
  temporal: Awaited<ReturnType<typeof connectTemporalClient>>;
  control: ControlWorker;
  keys: ApiKeys;
  nodes: NodeProcess[];
  startNode(name: string, extra?: string[]): Promise<NodeProcess>;
  stop(): Promise<void>;
}

/** `gateway` overrides the gateway's dependencies (its clock, its cool-downs). */
export async function startNetwork(policy: KeyPolicy, gateway: Partial<GatewayDeps> = {}): Promise<Network> {
  const s = stack();
  const target = { address: s.temporalAddress, namespace: s.temporalNamespace };
  const taskQueue = unique('control');
  const mongo = await connectMongo(s.mongodbUri, unique('e2e'));
  const nc = await connectNats(s.natsUrl, 'e2e');
  await ensureTokenStream(nc);
  const temporal = await connectTemporalClient(target);
  const control = await startControlWorker({ temporal: target, db: mongo.db, nc, taskQueue, workflowBundle: await workflowBundle() });
  const keys = new ApiKeys(mongo.db, policy);
  await keys.ensureIndexes();
  const nonces = new MongoNonceStore(mongo.db);
  await nonces.ensureIndexes();
  const registered = await new RegisteredNodes(mongo.db).start();
  const liveNodes = new LiveNodes(await nodesKv(nc)).restrictTo((id) => registered.has(id));
  const app = await buildApp({
    temporal,
    nc,
    js: jetstream(nc),
    db: mongo.db,
    keys,
    liveNodes,
    registered,
    nonces,
    metrics: createMetrics(),
    chainId: await chainClient(s.rpcUrl).getChainId(),
    chain: chainClient(s.rpcUrl),
    controlTaskQueue: taskQueue,
    keysPerHourPerAddress: 1000,
    ...gateway,
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const nodes: NodeProcess[] = [];
  return {
    url,
    app,
    mongo,
    nc,
    temporal,
    control,
    keys,
    nodes,
    async startNode(name, extra = []) {
      const node = await startNodeProcess({ nodeId: unique(name), extraArgs: ['--gateway', url, ...extra] });
      nodes.push(node);
      // Ready for routing once the gateway has seen its heartbeat.
      const deadline = Date.now() + 10_000;
      while (!liveNodes.get(node.nodeId) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      return node;
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
      await app.close();
      liveNodes.stop();
      registered.stop();
      await control.shutdown();
      await mongo.db.dropDatabase().catch(() => {});
      await mongo[Symbol.asyncDispose]();
      await nc.close();
      await temporal[Symbol.asyncDispose]();
    },
  };
}
