/**
 * Killing the control worker in the middle of a settlement: the worker runs as its own process
 * (workers/control-main.ts), SIGKILLs itself at a chosen step boundary (its hidden
 * `--test-crash-at`), and a fresh process picks the workflow up. The chain must end with one
 * EpochPosted event for the epoch and every operator able to claim exactly its amount.
 *
 * Anvil accounts (test mnemonic): 23 deploys and settles; 24 and 25 are operators that claim.
 * Epoch numbers: 2000–2099.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Db } from 'mongodb';
import type { Address } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { connectMongo, type MongoHandle } from '../connections/mongo.ts';
import { connectTemporalClient } from '../connections/temporal.ts';
import { rewardsDistributorAbi } from '../contracts/artifacts/index.ts';
import type { GitBlockDeployment } from '../contracts/deploy.ts';
import { mined, publicClientFor, testAccount, testAccountKey, walletFor } from '../contracts/testing.ts';
import { epochWindow, GBT, type EpochSchedule } from '../domain/emission.ts';
import { settlementPoints, type SettlementPoint } from '../domain/settlement.ts';
import { workflowIds } from '../temporal.config.ts';
import { settlementWorkflow } from '../workflows/settlement.ts';
import { stack, unique } from './helpers.ts';
import { accrue, deployRewards, epochPostedEvents, epochRoot, gbtBalance, scheduleEndingAgo, writeDeploymentFile, writeKeyFile } from './settlement-helpers.ts';
import { store } from '../store/index.ts';

const s = stack();
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SETTLER = 23;
const operators: [number, Address][] = [24, 25].map((i) => [i, testAccount(i).address]);
const FIRST_EPOCH = 2000;

let temporal: Awaited<ReturnType<typeof connectTemporalClient>>;
let mongo: MongoHandle;
let db: Db;
let deployment: GitBlockDeployment;
let schedule: EpochSchedule;
let env: Record<string, string>;
const taskQueue = unique('control');
const children: ChildProcess[] = [];

interface ControlProcess {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: () => string;
}

/** Starts workers/control-main.ts and waits until it polls. */
async function startControl(extra: string[] = []): Promise<ControlProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'workers', 'control-main.ts'), '--task-queue', taskQueue, '--no-schedule', ...extra], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('control worker polling')) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then(({ code }) => reject(new Error(`control worker exited (${code}) before polling:\n${output}`)));
    setTimeout(() => reject(new Error(`control worker not polling in 60 s:\n${output}`)), 60_000).unref();
  });
  return { child, exited, output: () => output };
}

beforeAll(async () => {
  temporal = await connectTemporalClient({ address: s.temporalAddress, namespace: s.temporalNamespace });
  const dbName = unique('crash');
  mongo = await connectMongo(s.mongodbUri, dbName);
  db = mongo.db;
  deployment = await deployRewards(s.rpcUrl, SETTLER);
  schedule = scheduleEndingAgo(FIRST_EPOCH + settlementPoints.length);
  env = {
    TEMPORAL_ADDRESS: s.temporalAddress,
    TEMPORAL_NAMESPACE: s.temporalNamespace,
    MONGODB_URI: s.mongodbUri,
    MONGODB_DB: dbName,
    NATS_URL: s.natsUrl,
    CHAIN_RPC_URL: s.rpcUrl,
    GITBLOCK_DEPLOYMENT_FILE: writeDeploymentFile(deployment),
    GITBLOCK_SETTLER_KEY_FILE: writeKeyFile(testAccountKey(SETTLER)),
    GITBLOCK_GENESIS: String(schedule.genesis),
    GITBLOCK_EPOCH_SECONDS: String(schedule.epochSeconds),
  };
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await db?.dropDatabase().catch(() => {});
  await mongo?.[Symbol.asyncDispose]();
  await temporal?.[Symbol.asyncDispose]();
});

describe('killing the control worker in the middle of settlement', () => {
  it.each(settlementPoints.map((point, i) => [point, FIRST_EPOCH + i] as [SettlementPoint, number]))(
    'killed right after %s, a restarted worker ends epoch %i with one root and correct balances',
    async (point, epoch) => {
      const amounts = operators.map(([i]) => BigInt(epoch - FIRST_EPOCH + 1) * GBT + BigInt(i));
      const at = new Date(epochWindow(epoch, schedule).startMs + 5_000);
      for (const [k, [, operator]] of operators.entries()) await accrue(db, { id: `${epoch}-${k}`, operator, amount: amounts[k]!, at });

      const doomed = await startControl(['--test-crash-at', point]);
      const handle = await temporal.workflow.start(settlementWorkflow, { workflowId: workflowIds.settlement(epoch), taskQueue, args: [{ epoch }] });
      expect(await doomed.exited).toEqual({ code: null, signal: 'SIGKILL' });

      // Where the crash left things.
      const record = await store(db).epochs.findOne({ _id: epoch });
      const onChain = await epochRoot(s.rpcUrl, deployment, epoch);
      if (point === 'post-sent') {
        // The worst moment: the transaction is on chain, and nothing recorded that it was sent.
        expect(record).toMatchObject({ status: 'computed' });
        expect(record).not.toHaveProperty('postTx');
        expect(onChain).toBe(record!.root);
      } else {
        expect(record?.status).toBe(point);
      }

      const restarted = await startControl();
      const summary = await handle.result();
      expect(summary).toMatchObject({ epoch, status: 'settled', operators: 2, paid: (amounts[0]! + amounts[1]!).toString() });

      const events = await epochPostedEvents(s.rpcUrl, deployment, epoch);
      expect(events).toHaveLength(1);
      expect(events[0]!.args.root).toBe(summary.root);
      expect(await epochRoot(s.rpcUrl, deployment, epoch)).toBe(summary.root);

      const pub = publicClientFor(s.rpcUrl);
      for (const [k, [index, operator]] of operators.entries()) {
        const proof = (await store(db).rewardProofs.findOne({ _id: `${epoch}:${operator}` }))!;
        expect(BigInt(proof.amount)).toBe(amounts[k]);
        const before = await gbtBalance(s.rpcUrl, deployment, operator);
        await mined(pub, walletFor(s.rpcUrl, testAccount(index)).writeContract({ address: deployment.distributor, abi: rewardsDistributorAbi, functionName: 'claim', args: [BigInt(epoch), operator, amounts[k]!, proof.proof] }));
        expect((await gbtBalance(s.rpcUrl, deployment, operator)) - before).toBe(amounts[k]);
      }

      restarted.child.kill('SIGTERM');
      expect((await restarted.exited).code).toBe(0);
    },
    120_000,
  );
});
