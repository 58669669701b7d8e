/**
 * The services of the local stack: how each starts, and how we know it is ready.
 * Readiness is checked through the same client libraries the project uses, so "ready" means
 * "our code can talk to it", not merely "the port is open".
 */
import { Connection } from '@temporalio/client';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { MongoClient } from 'mongodb';
import { createPublicClient, http } from 'viem';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { natsConnectionOptions } from '../connections/nats.ts';
import { searchAttributes } from '../temporal.config.ts';
import { writeNatsServerConfig, type NatsCredentials } from './credentials.ts';
import type { ToolName } from './tools.ts';

export type ServiceName = 'temporal' | 'mongodb' | 'nats' | 'anvil';

export interface ServicePlan {
  name: ServiceName;
  tool: ToolName;
  args: string[];
  /** Resolves when the service answers; rejects with the last error once the deadline passes. */
  ready: () => Promise<void>;
  readyTimeoutMs: number;
  /** The port its clients use: "ready" counts only when this service's process listens there. */
  port: number;
  /**
   * Where the listener cannot be identified (no /proc): by this long after its start, a service
   * that could not bind has exited, so a "ready" sooner may be another process's (default 300 ms).
   */
  bindSettleMs?: number;
}

export interface Ports {
  temporal: number;
  temporalUi: number;
  mongodb: number;
  nats: number;
  natsMonitor: number;
  anvil: number;
}

export interface Endpoints {
  temporalAddress: string;
  temporalNamespace: string;
  temporalUiUrl: string;
  mongodbUri: string;
  /** Carries the stack's NATS credentials (`nats://user:pass@host:port`): NATS refuses anyone without them. */
  natsUrl: string;
  rpcUrl: string;
}

export function endpointsFor(ports: Ports, nats: NatsCredentials, mongodbUri?: string): Endpoints {
  return {
    temporalAddress: `127.0.0.1:${ports.temporal}`,
    temporalNamespace: 'default',
    temporalUiUrl: `http://127.0.0.1:${ports.temporalUi}`,
    mongodbUri: mongodbUri ?? `mongodb://127.0.0.1:${ports.mongodb}/`,
    natsUrl: `nats://${nats.user}:${nats.password}@127.0.0.1:${ports.nats}`,
    rpcUrl: `http://127.0.0.1:${ports.anvil}`,
  };
}

export async function temporalReady(address: string): Promise<void> {
  const connection = await Connection.connect({ address, connectTimeout: 2_000 });
  try {
    await connection.workflowService.getSystemInfo({});
    // The custom search attributes must exist before any workflow uses them.
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
    const missing = Object.values(searchAttributes).filter((a) => !customAttributes?.[a.name]);
    if (missing.length) throw new Error(`search attributes not yet registered: ${missing.map((a) => a.name).join(', ')}`);
  } finally {
    await connection.close();
  }
}

export async function mongodbReady(uri: string): Promise<void> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 2_000, connectTimeoutMS: 2_000 });
  try {
    await client.connect();
    await client.db('admin').command({ ping: 1 });
  } finally {
    await client.close();
  }
}

export async function natsReady(url: string): Promise<void> {
  const nc = await connect({ ...natsConnectionOptions(url), timeout: 2_000, reconnect: false });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.getAccountInfo();
  } finally {
    await nc.close();
  }
}

export async function anvilReady(rpcUrl: string): Promise<void> {
  const client = createPublicClient({ transport: http(rpcUrl, { retryCount: 0, timeout: 2_000 }) });
  await client.getBlockNumber();
}

export function planServices(
  ports: Ports,
  dataDir: string,
  nats: NatsCredentials,
  external: { mongodbUri?: string | undefined; mongod?: boolean },
): ServicePlan[] {
  const endpoints = endpointsFor(ports, nats, external.mongodbUri);
  const dir = (name: string) => {
    const path = join(dataDir, name);
    mkdirSync(path, { recursive: true });
    return path;
  };
  const plans: ServicePlan[] = [
    {
      name: 'temporal',
      tool: 'temporal',
      args: [
        'server', 'start-dev',
        '--ip', '127.0.0.1',
        '--port', String(ports.temporal),
        '--ui-port', String(ports.temporalUi),
        '--db-filename', join(dir('temporal'), 'temporal.db'),
        '--log-level', 'warn',
        ...Object.values(searchAttributes).flatMap((a) => ['--search-attribute', `${a.name}=${a.type}`]),
      ],
      ready: () => temporalReady(endpoints.temporalAddress),
      port: ports.temporal,
      readyTimeoutMs: 90_000,
      // It opens its SQLite file and builds its services before it binds.
      bindSettleMs: 2_000,
    },
    {
      name: 'nats',
      tool: 'nats-server',
      // The config file holds only the credentials; flags given with -c override the file.
      args: ['-c', writeNatsServerConfig(dataDir, nats), '-a', '127.0.0.1', '-p', String(ports.nats), '-m', String(ports.natsMonitor), '-js', '-sd', dir('nats')],
      ready: () => natsReady(endpoints.natsUrl),
      port: ports.nats,
      readyTimeoutMs: 20_000,
    },
    {
      name: 'anvil',
      tool: 'anvil',
      // 50 funded accounts: test files each take their own range of the default mnemonic.
      args: ['--host', '127.0.0.1', '--port', String(ports.anvil), '--accounts', '50', '--silent', '--state', join(dir('anvil'), 'state.json')],
      ready: () => anvilReady(endpoints.rpcUrl),
      port: ports.anvil,
      readyTimeoutMs: 20_000,
    },
  ];
  if (!external.mongodbUri) {
    plans.push(
      external.mongod
        ? {
            name: 'mongodb',
            tool: 'mongod',
            args: ['--bind_ip', '127.0.0.1', '--port', String(ports.mongodb), '--dbpath', dir('mongodb')],
            ready: () => mongodbReady(endpoints.mongodbUri),
            port: ports.mongodb,
            readyTimeoutMs: 30_000,
          }
        : {
            name: 'mongodb',
            tool: 'ferretdb',
            args: [
              '--handler', 'sqlite',
              `--sqlite-url=file:${dir('ferretdb')}/`,
              '--listen-addr', `127.0.0.1:${ports.mongodb}`,
              '--state-dir', dir('ferretdb-state'),
              '--debug-addr', '-',
              '--telemetry', 'disable',
              '--log-level', 'warn',
            ],
            ready: () => mongodbReady(endpoints.mongodbUri),
            port: ports.mongodb,
            readyTimeoutMs: 20_000,
          },
    );
  }
  return plans;
}
