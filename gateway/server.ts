/**
 * The gateway process: connects to Temporal, MongoDB, NATS and the chain, builds the app and
 * listens; closes in order on shutdown.
 */
import { jetstream } from '@nats-io/jetstream';
import { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import type { NatsConnection } from '@nats-io/transport-node';
import type { FastifyInstance } from 'fastify';
import type { Db } from 'mongodb';
import { LiveNodes } from '../activities/live-nodes.ts';
import { NodeStandings } from '../activities/node-standings.ts';
import type { Config } from '../config/env.ts';
import { chainClient } from '../connections/chain.ts';
import { connectMongo } from '../connections/mongo.ts';
import { connectNats } from '../connections/nats.ts';
import { ensureTokenStream, nodesKv } from '../connections/streams.ts';
import { connectTemporalClient } from '../connections/temporal.ts';
import { taskQueues } from '../temporal.config.ts';
import { bindPreferring } from '../stack/ports.ts';
import { buildApp } from './app.ts';
import { ApiKeys, defaultKeyPolicy, type KeyPolicy } from './keys/keys.ts';
import { FallbackProvider, fallbackOptionsOf } from './fallback.ts';
import { createMetrics } from './metrics.ts';
import { RegisteredNodes } from './registered-nodes.ts';
import { GatewayRouter } from './router.ts';
import { startReconciler } from './reservations.ts';
import { MongoNonceStore } from './registration/mongo-nonces.ts';

export interface Gateway {
  app: FastifyInstance;
  url: string;
  close(): Promise<void>;
}

export interface GatewayOptions {
  config: Config;
  mongodbUri: string;
  port?: number;
  controlTaskQueue?: string;
  logger?: boolean;
  /**
   * When the port is taken, listen on one the OS picks instead of failing: for `npm start`,
   * which prints where it listens. A production gateway keeps its configured port or fails.
   */
  portFallback?: boolean;
  say?: (line: string) => void;
  /**
   * The connection of a control worker in this process (polling `controlTaskQueue`): the gateway
   * then starts request workflows on it eagerly, the start call's answer carrying the first
   * workflow task to that worker, which saves a dispatch through the server before the first
   * token. The worker owns the connection; the gateway does not close it.
   */
  controlConnection?: NativeConnection | undefined;
  /**
   * Route requests here as they are admitted (router.ts; the default), or, false, leave it to each
   * workflow's `route` on the control worker, as the gateway did before (bench:gateway --ab).
   */
  routeAtGateway?: boolean | undefined;
}

/**
 * What every gateway reads besides its connections, its indexes ensured and its caches started
 * (stop `registered`, `liveNodes` and `standings` when done).
 */
export async function startGatewayState(db: Db, nc: NatsConnection, keyPolicy: KeyPolicy) {
  const keys = new ApiKeys(db, keyPolicy);
  await keys.ensureIndexes();
  const nonces = new MongoNonceStore(db);
  await nonces.ensureIndexes();
  const registered = await new RegisteredNodes(db).start();
  const liveNodes = new LiveNodes(await nodesKv(nc)).restrictTo((id) => registered.has(id));
  const standings = await new NodeStandings(db).start();
  return { keys, nonces, registered, liveNodes, standings, js: jetstream(nc), metrics: createMetrics() };
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const { config } = options;
  const temporal = options.controlConnection
    ? Object.assign(new Client({ connection: options.controlConnection, namespace: config.TEMPORAL_NAMESPACE }), { [Symbol.asyncDispose]: async () => {} })
    : await connectTemporalClient({ address: config.TEMPORAL_ADDRESS, namespace: config.TEMPORAL_NAMESPACE });
  const mongo = await connectMongo(options.mongodbUri, config.MONGODB_DB);
  const nc = await connectNats(config, 'gitblock-gateway');
  await ensureTokenStream(nc);
  const chain = chainClient(config.CHAIN_RPC_URL);
  const chainId = await chain.getChainId();
  const state = await startGatewayState(mongo.db, nc, defaultKeyPolicy);
  const { keys, nonces, registered, liveNodes, standings } = state;
  const router = options.routeAtGateway === false ? undefined : await GatewayRouter.start(mongo.db, liveNodes);
  const fallbackOptions = fallbackOptionsOf(config);
  const app = await buildApp(
    {
      temporal,
      nc,
      db: mongo.db,
      ...state,
      chainId,
      chain,
      controlTaskQueue: options.controlTaskQueue ?? taskQueues.control,
      eagerStart: options.controlConnection !== undefined,
      router,
      keysPerHourPerAddress: 20,
      fallback: fallbackOptions ? new FallbackProvider(fallbackOptions) : undefined,
      epochSchedule: { genesis: config.GITBLOCK_GENESIS, epochSeconds: config.GITBLOCK_EPOCH_SECONDS },
    },
    { logger: options.logger ?? false },
  );
  let reconciler: { stop(): void } | undefined;
  const close = async () => {
    clearInterval(pruning);
    reconciler?.stop();
    await app.close();
    liveNodes.stop();
    registered.stop();
    standings.stop();
    router?.stop();
    await nc.drain().catch(() => {});
    await mongo[Symbol.asyncDispose]();
    await temporal[Symbol.asyncDispose]();
  };
  // Expired registration nonces and old rate-limit windows go even where TTL indexes do not.
  const pruning = setInterval(() => void Promise.all([nonces.prune(), keys.prune()]).catch(() => {}), 60_000);
  pruning.unref();
  const listen = (port: number) => app.listen({ host: config.GATEWAY_HOST, port });
  const port = options.port ?? config.GATEWAY_PORT;
  let url: string;
  try {
    url = options.portFallback ? await bindPreferring(port, listen, (line) => options.say?.(`gateway: ${line}`)) : await listen(port);
  } catch (err) {
    // The connections made above would otherwise keep the process alive after the failure.
    await close().catch(() => {});
    throw err;
  }
  // Settles the reservations of requests whose gateway died before it could (any gateway may: each settles once).
  reconciler = startReconciler({ keys, temporal, db: mongo.db }, { log: (err) => app.log.warn({ err }, 'reservation reconciler round failed') });
  return { app, url, close };
}

