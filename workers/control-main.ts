/**
 * The control worker as its own process (`npm run control`, `tsx workers/control-main.ts`):
 * every workflow and control activity on the `control` task queue, the settler when
 * GITBLOCK_DEPLOYMENT_FILE and GITBLOCK_SETTLER_KEY_FILE are set, and the weekly settlement
 * Schedule, created or updated at start. SIGINT/SIGTERM drain and exit 0.
 *
 *   tsx workers/control-main.ts [--task-queue NAME] [--no-schedule]
 */
import { parseArgs } from 'node:util';
import { Runtime } from '@temporalio/worker';
import { oneLineLogger } from './one-line-log.ts';
import { settlementChainFromConfig } from '../activities/settlement-chain.ts';
import { loadConfig } from '../config/env.ts';
import { connectMongo } from '../connections/mongo.ts';
import { connectNats } from '../connections/nats.ts';
import { connectTemporalClient } from '../connections/temporal.ts';
import { settlementPoints, type SettlementPoint } from '../domain/settlement.ts';
import { taskQueues } from '../temporal.config.ts';
import { startControlWorker } from './control.ts';
import { ensureSettlementSchedule } from './settlement-schedule.ts';

function usage(message: string): never {
  process.stderr.write(`gitblock-control: ${message}\nusage: tsx workers/control-main.ts [--task-queue NAME] [--no-schedule]\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      strict: true,
      allowPositionals: false,
      options: {
        'task-queue': { type: 'string' },
        'no-schedule': { type: 'boolean' },
        // Test only: SIGKILL this process when settlement reaches the named point.
        'test-crash-at': { type: 'string' },
      },
    }));
  } catch (err) {
    usage((err as Error).message.split('\n')[0] ?? 'bad arguments');
  }
  const crashAt = values['test-crash-at'];
  if (crashAt !== undefined && !settlementPoints.includes(crashAt as SettlementPoint)) usage(`--test-crash-at must be one of ${settlementPoints.join(', ')}`);
  const taskQueue = values['task-queue'] ?? taskQueues.control;
  if (!/^[\w.-]{1,200}$/.test(taskQueue)) usage('--task-queue: letters, digits, dot, dash and underscore only');

  Runtime.install({ logger: oneLineLogger('WARN') });
  const config = loadConfig();
  if (!config.MONGODB_URI) throw new Error('MONGODB_URI is not set: the control worker needs the network’s MongoDB (npm start runs a local one)');
  const target = { address: config.TEMPORAL_ADDRESS, namespace: config.TEMPORAL_NAMESPACE };
  const schedule = { genesis: config.GITBLOCK_GENESIS, epochSeconds: config.GITBLOCK_EPOCH_SECONDS };

  const mongo = await connectMongo(config.MONGODB_URI, config.MONGODB_DB);
  const nc = await connectNats(config, 'gitblock-control');
  const chain = await settlementChainFromConfig(config);
  if (!chain) console.error('No GITBLOCK_DEPLOYMENT_FILE / GITBLOCK_SETTLER_KEY_FILE: this worker will not settle epochs.');
  if (!config.GITBLOCK_SEED_VERIFIERS.length) console.error('No GITBLOCK_SEED_VERIFIERS: only nodes with a record of passed checks verify; a new network leaves its checks unverified.');
  const control = await startControlWorker({
    temporal: target,
    db: mongo.db,
    nc,
    taskQueue,
    seedVerifiers: config.GITBLOCK_SEED_VERIFIERS,
    settlement: {
      schedule,
      chain,
      probe: crashAt
        ? (point) => {
            if (point === crashAt) process.kill(process.pid, 'SIGKILL');
          }
        : undefined,
    },
  });
  if (!values['no-schedule']) {
    const client = await connectTemporalClient(target);
    try {
      const { scheduleId, created } = await ensureSettlementSchedule(client, { schedule, taskQueue });
      console.log(`settlement schedule ${scheduleId} ${created ? 'created' : 'updated'}`);
    } finally {
      await client[Symbol.asyncDispose]();
    }
  }
  console.log(`control worker polling ${taskQueue}${chain ? `, settling on chain ${chain.chainId} (distributor ${chain.distributor})` : ''}`);

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(1);
    stopping = true;
    console.log(`${signal}: draining...`);
    // A signal handler cannot await: the drain runs on its own and ends the process either way.
    void control
      .shutdown()
      .then(() => Promise.all([nc.drain().catch(() => {}), mongo[Symbol.asyncDispose]()]))
      .then(
        () => process.exit(0),
        (err: unknown) => {
          console.error('drain failed:', err);
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  await control.running;
}

main().catch((err: unknown) => {
  process.stderr.write(`gitblock-control: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
