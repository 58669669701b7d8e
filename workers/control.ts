/**
 * The control worker: every workflow (requests, node actors, settlement) and the control-plane
 * activities (routing, request records, the ledger, node projections) on the `control` queue.
 */
import { fileURLToPath } from 'node:url';
import type { NatsConnection } from '@nats-io/transport-node';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { Db } from 'mongodb';
import { LiveNodes } from '../activities/live-nodes.ts';
import { createNodeProjectionActivities } from '../activities/node-projection.ts';
import { createRequestActivities } from '../activities/requests.ts';
import { createRoutingActivities, NodeDirectory, RouteLoad } from '../activities/routing.ts';
import { createLedgerActivities } from '../activities/ledger.ts';
import { createSettlementActivities, type SettlementDeps } from '../activities/settlement.ts';
import { defaultEpochSchedule } from '../domain/emission.ts';
import { verifierPolicy } from '../domain/verifiers.ts';
import { nodesKv } from '../connections/streams.ts';
import { taskQueues } from '../temporal.config.ts';

export const workflowsPath = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

export interface ControlWorkerOptions {
  temporal: { address: string; namespace: string };
  db: Db;
  nc: NatsConnection;
  taskQueue?: string;
  /** A prebuilt workflow bundle (tests bundle once per process). */
  workflowBundle?: { code: string } | undefined;
  /** Settlement's epoch schedule and settler; without a settler, settlement refuses to start. */
  settlement?: Omit<SettlementDeps, 'db'> | undefined;
  /** Operators (GITBLOCK_SEED_VERIFIERS) whose active nodes verify without a record; none by default. */
  seedVerifiers?: readonly string[] | undefined;
}

export interface ControlWorker {
  worker: Worker;
  /** The worker's connection: a gateway in this process starts workflows on it eagerly (gateway/server.ts). */
  connection: NativeConnection;
  liveNodes: LiveNodes;
  running: Promise<void>;
  shutdown(): Promise<void>;
}

export async function startControlWorker(options: ControlWorkerOptions): Promise<ControlWorker> {
  const liveNodes = new LiveNodes(await nodesKv(options.nc));
  // Routing reads these from memory, not MongoDB, on every request (issue 12).
  const directory = await new NodeDirectory(options.db).start();
  const load = new RouteLoad();
  const connection = await NativeConnection.connect({ address: options.temporal.address });
  const worker = await Worker.create({
    connection,
    namespace: options.temporal.namespace,
    taskQueue: options.taskQueue ?? taskQueues.control,
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath }),
    activities: {
      ...createRoutingActivities({ db: options.db, liveNodes, directory, load, verifiers: verifierPolicy(options.seedVerifiers) }),
      ...createRequestActivities({ db: options.db, load }),
      ...createNodeProjectionActivities(options.db),
      ...createLedgerActivities({ db: options.db }),
      ...createSettlementActivities({ schedule: defaultEpochSchedule, ...options.settlement, db: options.db }),
    },
  });
  const running = worker.run();
  let stopped: Promise<void> | undefined;
  return {
    worker,
    connection,
    liveNodes,
    running,
    shutdown() {
      // Once: a second call (a test that stopped it early, then its teardown) waits on the first.
      stopped ??= (async () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running.catch(() => {});
        liveNodes.stop();
        directory.stop();
        await connection.close();
      })();
      return stopped;
    },
  };
}
