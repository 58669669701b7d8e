/** What the gateway is built from; `server.ts` wires the real ones, tests may wire their own. */
import type { JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Client } from '@temporalio/client';
import type { Db } from 'mongodb';
import type { PublicClient } from 'viem';
import type { LiveNodes } from '../activities/live-nodes.ts';
import type { NodeStandings } from '../activities/node-standings.ts';
import type { FallbackProvider } from './fallback.ts';
import type { EpochSchedule } from '../domain/emission.ts';
import type { ApiKeys } from './keys/keys.ts';
import type { Metrics } from './metrics.ts';
import type { RegisteredNodes } from './registered-nodes.ts';
import type { RequestRouter } from './router.ts';
import type { NonceStore } from './registration/signed.ts';

export interface GatewayDeps {
  temporal: Client;
  nc: NatsConnection;
  js: JetStreamClient;
  db: Db;
  keys: ApiKeys;
  /** Live heartbeats, restricted to registered nodes (see RegisteredNodes). */
  liveNodes: LiveNodes;
  registered: RegisteredNodes;
  /** Each node's projected state, cached: what is advertised counts only routable nodes (see serving-nodes.ts). */
  standings: NodeStandings;
  nonces: NonceStore;
  metrics: Metrics;
  /** The chain nodes register for (EIP-712 domain) and rewards settle on. */
  chainId: number;
  /** Task queue of the control worker that runs request and node workflows. */
  controlTaskQueue: string;
  /**
   * A control worker polling `controlTaskQueue` shares `temporal`'s (native) connection in this
   * process: request workflows start eagerly on it (server.ts).
   */
  eagerStart?: boolean | undefined;
  /** Routes requests as they are admitted (router.ts); without one, each workflow asks the control worker. */
  router?: RequestRouter | undefined;
  /** Keys one client address may create per hour. */
  keysPerHourPerAddress: number;
  /** Ms since epoch; defaults to Date.now. */
  now?: () => number;
  /** How long after a suspension an operator may reinstate the node; default REINSTATE_COOL_DOWN_MS. */
  reinstateCoolDownMs?: number;
  /** Answers what no node can serve (GITBLOCK_FALLBACK_URL); none: such requests get 503 no_node_available. */
  fallback?: FallbackProvider | undefined;
  /** Reads the rewards distributor (claim state for `GET /v1/rewards/<operator>`); optional. */
  chain?: PublicClient | undefined;
  /** The settlement schedule (the status page's epoch and countdown); the default genesis and week otherwise. */
  epochSchedule?: EpochSchedule | undefined;
}
