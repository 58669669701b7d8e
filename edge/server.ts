/**
 * The edge: the one endpoint GPU nodes talk to (gRPC, one port). It serves Temporal's
 * WorkflowService to the nodes' activity workers, forwarding only their own worker calls
 * (edge/temporal-proxy.ts), and the edge's own NodeEdge service for registration, sessions,
 * token streams, cancels and heartbeats (edge/node-service.ts). Behind it, Temporal, NATS and
 * MongoDB stay on the internal network.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Client } from '@temporalio/client';
import type { Db } from 'mongodb';
import type { Config } from '../config/env.ts';
import { chainClient } from '../connections/chain.ts';
import { connectMongo } from '../connections/mongo.ts';
import { connectNats } from '../connections/nats.ts';
import { ensureTokenStream, nodesKv } from '../connections/streams.ts';
import { connectTemporalClient } from '../connections/temporal.ts';
import { registerNode } from '../gateway/registration/register.ts';
import { MongoNonceStore } from '../gateway/registration/mongo-nonces.ts';
import { NodeStandings } from '../activities/node-standings.ts';
import type { NonceStore } from '../gateway/registration/signed.ts';
import { taskQueues } from '../temporal.config.ts';
import { nodeServiceHandlers } from './node-service.ts';
import { nodeEdgeService } from './protocol.ts';
import { SessionStore } from './sessions.ts';
import { TaskLedger } from './tasks.ts';
import { workflowServiceDefinition, workflowServiceHandlers } from './temporal-proxy.ts';

export interface EdgeDeps {
  /** host:port to listen on; port 0 picks a free one. */
  listen: string;
  temporal: { address: string; namespace: string };
  /** For registrations: the node actor is started or signalled by the edge, never by a node. */
  temporalClient: Client;
  db: Db;
  nc: NatsConnection;
  nonces: NonceStore;
  chainId: number;
  /** The name sessions are signed for; one per network edge. */
  audience: string;
  controlTaskQueue: string;
  /** How often the edge re-reads which nodes are suspended or retired; default nodeStandingsRefreshMs. */
  standingsRefreshMs?: number;
  log?: (line: string) => void;
  now?: () => number;
  /** PEM certificate chain and key: nodes then connect with TLS (production: always). */
  tls?: { cert: Buffer; key: Buffer } | undefined;
}

export interface Edge {
  /** host:port nodes connect to. */
  address: string;
  sessions: SessionStore;
  tasks: TaskLedger;
  /** The cached standings the edge refuses suspended and retired nodes' polls by. */
  standings: NodeStandings;
  close(): Promise<void>;
}

// Polls hold a call open for up to a minute; results and delivered streams can be large.
const serverOptions: grpc.ServerOptions = {
  'grpc.max_receive_message_length': 16 * 1024 * 1024,
  'grpc.max_send_message_length': 64 * 1024 * 1024,
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': 5_000,
  // Per-call bookkeeping nobody reads here, on the path of every chunk (bench/edge.ts profile).
  'grpc.enable_channelz': 0,
};

export async function startEdge(deps: EdgeDeps): Promise<Edge> {
  const log = deps.log ?? (() => {});
  const jsm = await ensureTokenStream(deps.nc);
  const kv = await nodesKv(deps.nc);
  const sessions = new SessionStore({ db: deps.db, chainId: deps.chainId, audience: deps.audience, nonces: deps.nonces, ...(deps.now ? { now: deps.now } : {}) });
  const tasks = new TaskLedger();
  const standings = await new NodeStandings(deps.db).start(deps.standingsRefreshMs);
  const upstream = new grpc.Client(deps.temporal.address, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.max_send_message_length': 16 * 1024 * 1024,
  });
  const server = new grpc.Server(serverOptions);
  server.addService(workflowServiceDefinition(), workflowServiceHandlers({ upstream, namespace: deps.temporal.namespace, sessions, tasks, standings, log }));
  server.addService(
    nodeEdgeService,
    nodeServiceHandlers({
      info: { audience: deps.audience, chainId: deps.chainId, namespace: deps.temporal.namespace },
      sessions,
      tasks,
      nc: deps.nc,
      js: jetstream(deps.nc),
      jsm,
      kv,
      register: (body) =>
        registerNode({ db: deps.db, temporal: deps.temporalClient, controlTaskQueue: deps.controlTaskQueue, chainId: deps.chainId, nonces: deps.nonces, now: deps.now }, body),
      log,
    }),
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      deps.listen,
      deps.tls ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: deps.tls.cert, private_key: deps.tls.key }], false) : grpc.ServerCredentials.createInsecure(),
      (err, bound) => (err ? reject(err) : resolve(bound)),
    ),
  );
  const host = deps.listen.slice(0, deps.listen.lastIndexOf(':'));
  return {
    address: `${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${port}`,
    sessions,
    tasks,
    standings,
    async close() {
      standings.stop();
      // Open polls end with the server; nodes reconnect to another edge or wait for this one.
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), 2_000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      upstream.close();
    },
  };
}

export interface EdgeProcess extends Edge {
  stop(): Promise<void>;
}

/** The edge with its own connections, as `npm run edge` and `npm start` run it. */
export async function startEdgeFromConfig(config: Config, options: { mongodbUri: string; controlTaskQueue?: string; log?: (line: string) => void }): Promise<EdgeProcess> {
  const temporal = { address: config.TEMPORAL_ADDRESS, namespace: config.TEMPORAL_NAMESPACE };
  const temporalClient = await connectTemporalClient(temporal);
  // Closed in reverse order when the edge stops, or when a later start step fails (a port taken, a chain away).
  const opened: (() => PromiseLike<unknown>)[] = [() => temporalClient[Symbol.asyncDispose]()];
  const closeAll = async () => {
    for (const close of opened.reverse()) await Promise.resolve(close()).catch(() => {});
  };
  try {
    const mongo = await connectMongo(options.mongodbUri, config.MONGODB_DB);
    opened.push(() => mongo[Symbol.asyncDispose]());
    const nc = await connectNats(config, 'gitblock-edge');
    opened.push(() => nc.drain());
    const nonces = new MongoNonceStore(mongo.db);
    await nonces.ensureIndexes();
    const chainId = await chainClient(config.CHAIN_RPC_URL).getChainId();
    const edge = await startEdge({
      listen: `${config.EDGE_HOST}:${config.EDGE_PORT}`,
      temporal,
      temporalClient,
      db: mongo.db,
      nc,
      nonces,
      chainId,
      audience: config.EDGE_AUDIENCE,
      controlTaskQueue: options.controlTaskQueue ?? taskQueues.control,
      tls: config.EDGE_TLS_CERT_FILE && config.EDGE_TLS_KEY_FILE ? { cert: readFileSync(config.EDGE_TLS_CERT_FILE), key: readFileSync(config.EDGE_TLS_KEY_FILE) } : undefined,
      ...(options.log ? { log: options.log } : {}),
    });
    return {
      ...edge,
      async stop() {
        await edge.close();
        await closeAll();
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
