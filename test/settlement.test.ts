/**
 * Weekly settlement on the real stack: the settlement workflow on a control worker, the ledger in
 * MongoDB, the root posted to a fresh RewardsDistributor on anvil, claims through the gateway and
 * `gitblock-node rewards claim`.
 *
 * Anvil accounts (test mnemonic): 20 deploys and settles; 21 and 22 are operators that claim.
 * Epoch numbers: 0–1 and 1000–1099 (`settle-<epoch>` ids are unique across the test run).
 */
import { spawn } from 'node:child_process';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { WorkflowFailedError } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import type { Db } from 'mongodb';
import { createTestClient, http, type Address } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { foundry } from 'viem/chains';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LiveNodes } from '../activities/live-nodes.ts';
import { NodeStandings } from '../activities/node-standings.ts';
import { createLedgerActivities } from '../activities/ledger.ts';
import type { SettlementChain } from '../activities/settlement-chain.ts';
import { createSettlementActivities } from '../activities/settlement.ts';
import { connectMongo, type MongoHandle } from '../connections/mongo.ts';
import { connectNats } from '../connections/nats.ts';
import { ensureTokenStream, nodesKv } from '../connections/streams.ts';
import { connectTemporalClient } from '../connections/temporal.ts';
import { rewardsDistributorAbi } from '../contracts/artifacts/index.ts';
import type { GitBlockDeployment } from '../contracts/deploy.ts';
import { buildRewardsTree } from '../contracts/merkle.ts';
import { mined, publicClientFor, revertOf, testAccount, testAccountKey, walletFor } from '../contracts/testing.ts';
import { epochEmission, epochWindow, GBT, type EpochSchedule } from '../domain/emission.ts';
import type { EpochSummary } from '../domain/settlement.ts';
import { buildApp } from '../gateway/app.ts';
import { ApiKeys } from '../gateway/keys/keys.ts';
import { createMetrics } from '../gateway/metrics.ts';
import { RegisteredNodes } from '../gateway/registered-nodes.ts';
import { MongoNonceStore } from '../gateway/registration/mongo-nonces.ts';
import { searchAttributes, workflowIds } from '../temporal.config.ts';
import { startControlWorker, type ControlWorker } from '../workers/control.ts';
import { ensureSettlementSchedule } from '../workers/settlement-schedule.ts';
import { describeFailure, runSettle } from '../workers/settle.ts';
import { settlementWorkflow } from '../workflows/settlement.ts';
import { stack, unique, workflowBundle } from './helpers.ts';
import { runNodeCliToEnd as cli } from './node-process.ts';
import { accrue, deployRewards, epochPostedEvents, epochRoot, gbtBalance, scheduleEndingAgo, settlerChain, writeKeyFile } from './settlement-helpers.ts';
import { store } from '../store/index.ts';

const s = stack();
const target = { address: s.temporalAddress, namespace: s.temporalNamespace };
const SETTLER = 20;
const op1 = testAccount(21).address;
const op2 = testAccount(22).address;
const pub = publicClientFor(s.rpcUrl);

let temporal: Awaited<ReturnType<typeof connectTemporalClient>>;
let mongo: MongoHandle;
let nc: NatsConnection;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  temporal = await connectTemporalClient(target);
  mongo = await connectMongo(s.mongodbUri, unique('settle'));
  nc = await connectNats(s.natsUrl, 'settlement-test');
  await ensureTokenStream(nc);
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  await nc?.close();
  await mongo?.[Symbol.asyncDispose]();
  await temporal?.[Symbol.asyncDispose]();
});

/** One network's settlement: its own database, deployment, epoch schedule and control worker. */
interface Network {
  db: Db;
  deployment: GitBlockDeployment;
  chain: SettlementChain;
  schedule: EpochSchedule;
  taskQueue: string;
  worker: ControlWorker;
  settle(epoch: number): Promise<EpochSummary>;
}

async function network(schedule: EpochSchedule, confirmations = 1): Promise<Network> {
  const db = mongo.client.db(unique('settle'));
  const deployment = await deployRewards(s.rpcUrl, SETTLER);
  const chain = await settlerChain(s.rpcUrl, deployment, SETTLER, confirmations);
  const taskQueue = unique('control');
  const worker = await startControlWorker({ temporal: target, db, nc, taskQueue, workflowBundle: await workflowBundle(), settlement: { schedule, chain } });
  cleanups.push(async () => {
    await worker.shutdown();
    await db.dropDatabase();
  });
  return {
    db,
    deployment,
    chain,
    schedule,
    taskQueue,
    worker,
    settle: (epoch) => temporal.workflow.execute(settlementWorkflow, { workflowId: workflowIds.settlement(epoch), taskQueue, args: [{ epoch }] }),
  };
}

/** A time inside `epoch`'s window. */
const inEpoch = (schedule: EpochSchedule, epoch: number, offsetMs = 1_000) => new Date(epochWindow(epoch, schedule).startMs + offsetMs);

/** The gateway app on `db`, listening on a free port, with chain access for claim state. */
async function gateway(db: Db): Promise<{ app: FastifyInstance; url: string }> {
  const keys = new ApiKeys(db, { requestsPerMinute: 10, tokensPerDay: 1000 });
  const liveNodes = new LiveNodes(await nodesKv(nc));
  const registered = await new RegisteredNodes(db).start();
  const standings = await new NodeStandings(db).start();
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
    chain: pub,
    controlTaskQueue: 'unused',
    keysPerHourPerAddress: 10,
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  cleanups.push(async () => {
    await app.close();
    liveNodes.stop();
    registered.stop();
    standings.stop();
  });
  return { app, url };
}

async function failureOf(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  return describeFailure(err);
}

describe('settling an epoch', () => {
  let net: Network;
  let gw: { app: FastifyInstance; url: string };
  const E = 1000;
  const amounts = { op1: [3n * GBT, 5n * GBT / 2n], op2: [7n * GBT], voided: 11n * GBT };

  beforeAll(async () => {
    net = await network(scheduleEndingAgo(E + 1));
    gw = await gateway(net.db);
    const at = (offsetMs: number) => inEpoch(net.schedule, E, offsetMs);
    await accrue(net.db, { id: 'r-1', operator: op1, amount: amounts.op1[0]!, at: at(1_000) });
    await accrue(net.db, { id: 'r-2', operator: op1, amount: amounts.op1[1]!, at: at(2_000) });
    await accrue(net.db, { id: 'r-3', operator: op2, amount: amounts.op2[0]!, at: at(3_000) });
    // Before epoch E's window (and before any settlement): swept into E, the first settled epoch.
    await accrue(net.db, { id: 'r-early', operator: op2, amount: 1n, at: new Date(epochWindow(E, net.schedule).startMs - 60_000) });
    // A spot check failed: never paid.
    await accrue(net.db, { id: 'r-bad', operator: op1, amount: amounts.voided, at: at(4_000) });
    // In the next epoch: not E's.
    await accrue(net.db, { id: 'r-next', operator: op1, amount: 13n * GBT, at: inEpoch(net.schedule, E + 1) });
  });

  it('voids an accrual idempotently, keeping the first reason, and blocks one not yet made', async () => {
    const ledger = createLedgerActivities({ db: net.db });
    expect(await ledger.voidAccrual({ requestId: 'r-bad', reason: 'spot check failed: token 3 rank 900' })).toMatchObject({ voided: true, alreadyVoided: false, placeholder: false });
    expect(await ledger.voidAccrual({ requestId: 'r-bad', reason: 'another reason' })).toMatchObject({ voided: true, alreadyVoided: true });
    const doc = await store(net.db).ledger.findOne({ _id: 'r-bad' });
    expect(doc).toMatchObject({ status: 'voided', voidReason: 'spot check failed: token 3 rank 900', amount: amounts.voided.toString() });
    // Voided before it accrued: the placeholder holds the request id, so no accrual can follow.
    expect(await ledger.voidAccrual({ requestId: 'r-never', reason: 'spot check failed' })).toMatchObject({ voided: true, placeholder: true });
    await expect(accrue(net.db, { id: 'r-never', operator: op1, amount: GBT, at: inEpoch(net.schedule, E) })).rejects.toMatchObject({ code: 11000 });
    await expect(ledger.voidAccrual({ requestId: '', reason: 'x' })).rejects.toMatchObject({ type: 'LEDGER_BAD_INPUT' });
  });

  it('shows accruals as accrued before settlement', async () => {
    const view = (await (await fetch(`${gw.url}/v1/rewards/${op1}`)).json()) as { accrued: { amount: string; requests: number }; epochs: unknown[] };
    expect(view.accrued).toEqual({ amount: (amounts.op1[0]! + amounts.op1[1]! + 13n * GBT).toString(), requests: 3 });
    expect(view.epochs).toEqual([]);
  });

  it('posts one root, with the epoch as search attribute, and stores every proof', async () => {
    const summary = await net.settle(E);
    const paid1 = amounts.op1[0]! + amounts.op1[1]!;
    const paid2 = amounts.op2[0]! + 1n;
    expect(summary).toMatchObject({ epoch: E, status: 'settled', entries: 4, operators: 2, paid: (paid1 + paid2).toString(), capped: false });
    const tree = buildRewardsTree(BigInt(E), [
      { operator: op1, amount: paid1 },
      { operator: op2, amount: paid2 },
    ]);
    expect(summary.root).toBe(tree.root);
    expect(await epochRoot(s.rpcUrl, net.deployment, E)).toBe(tree.root);
    const events = await epochPostedEvents(s.rpcUrl, net.deployment, E);
    expect(events).toHaveLength(1);
    expect(events[0]!.args).toMatchObject({ root: tree.root, total: paid1 + paid2 });
    expect(summary.postTx).toBe(events[0]!.transactionHash);

    const proofs = await store(net.db).rewardProofs.find({ epoch: E }).sort({ operator: 1 }).toArray();
    expect(proofs.map((p) => [p.operator, p.amount, p.proof])).toEqual(
      [op1, op2].sort().map((op) => [op, tree.claims.get(op)!.amount.toString(), tree.claims.get(op)!.proof]),
    );
    const described = await temporal.workflow.getHandle(workflowIds.settlement(E)).describe();
    expect(described.searchAttributes[searchAttributes.epoch.name]).toEqual([E]);
    // The next epoch's accrual was left for it.
    expect(await store(net.db).epochEntries.find({}, { sort: { _id: 1 } }).toArray()).toEqual(
      ['r-1', 'r-2', 'r-3', 'r-early'].map((id) => expect.objectContaining({ _id: id, epoch: E })),
    );
  });

  it('serves proofs and claim state on the gateway, for the address in any case, and rejects a bad address in OpenAI’s shape', async () => {
    // Lowercase, and mixed case that is no valid checksum: the same operator, as GET /v1/nodes?operator= reads it.
    const letter = op2.slice(2).search(/[a-fA-F]/) + 2;
    const c = op2.charAt(letter);
    const flipped = c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase();
    for (const spelling of [op2.toLowerCase(), op2.slice(0, letter) + flipped + op2.slice(letter + 1)]) {
      const response = await gw.app.inject({ method: 'GET', url: `/v1/rewards/${spelling}` });
      expect(response.statusCode).toBe(200);
      const view = response.json();
      expect(view).toMatchObject({ operator: op2, settled: (7n * GBT + 1n).toString(), claimable: (7n * GBT + 1n).toString(), claimed: '0', accrued: { amount: '0', requests: 0 } });
      expect(view.epochs).toEqual([expect.objectContaining({ epoch: E, status: 'claimable', amount: (7n * GBT + 1n).toString(), distributor: net.deployment.distributor, chainId: 31337 })]);
    }
    for (const bad of ['0x123', 'hello', `${op2}0`]) {
      const r = await gw.app.inject({ method: 'GET', url: `/v1/rewards/${bad}` });
      expect(r.statusCode).toBe(400);
      expect(r.json()).toMatchObject({ error: { type: 'invalid_request_error', code: 'invalid_body', param: 'operator' } });
    }
  });

  it('lets each operator claim exactly its amount with `gitblock-node rewards claim`, once', async () => {
    const key1 = writeKeyFile(testAccountKey(21), 'operator.key');
    const before = await gbtBalance(s.rpcUrl, net.deployment, op1);
    const shown = await cli(['rewards', '--gateway', gw.url, '--key-file', key1]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/claimable\s+5\.5 GBT \(epochs 1000\)/);
    expect(shown.stdout).toMatch(/accrued\s+13 GBT \(1 requests, not yet settled\)/);

    const claimed = await cli(['rewards', 'claim', '--gateway', gw.url, '--key-file', key1, '--rpc', s.rpcUrl]);
    expect(claimed.stderr).toBe('');
    expect(claimed.code).toBe(0);
    expect(claimed.stdout).toMatch(/^epoch 1000: claimed 5\.5 GBT in tx 0x[0-9a-f]{64}$/m);
    expect((await gbtBalance(s.rpcUrl, net.deployment, op1)) - before).toBe(amounts.op1[0]! + amounts.op1[1]!);

    const again = await cli(['rewards', 'claim', '--gateway', gw.url, '--key-file', key1, '--rpc', s.rpcUrl]);
    expect(again.code).toBe(0);
    expect(again.stdout.trim()).toBe('Nothing to claim.');
    expect((await gw.app.inject({ method: 'GET', url: `/v1/rewards/${op1}` })).json()).toMatchObject({ claimed: (amounts.op1[0]! + amounts.op1[1]!).toString(), claimable: '0' });

    // Operator 2 claims by hand with its proof; a second claim reverts on chain.
    const proof = (await store(net.db).rewardProofs.findOne({ _id: `${E}:${op2}` }))!;
    const wallet = walletFor(s.rpcUrl, testAccount(22));
    const args = [BigInt(E), op2, BigInt(proof.amount), proof.proof] as const;
    await mined(pub, wallet.writeContract({ address: net.deployment.distributor, abi: rewardsDistributorAbi, functionName: 'claim', args: [...args] }));
    expect(await gbtBalance(s.rpcUrl, net.deployment, op2)).toBe(7n * GBT + 1n);
    expect((await revertOf(wallet.writeContract({ address: net.deployment.distributor, abi: rewardsDistributorAbi, functionName: 'claim', args: [...args] }))).name).toBe('AlreadyClaimed');
  });

  it('fails the CLI with one line for bad input', async () => {
    const key1 = writeKeyFile(testAccountKey(21), 'operator.key');
    const noGateway = await cli(['rewards', '--key-file', key1, '--gateway', 'ftp://x']);
    expect(noGateway.code).toBe(1);
    expect(noGateway.stderr).toBe('gitblock-node: --gateway: expected an http(s) URL, got ftp://x\n');
    const down = await cli(['rewards', 'claim', '--key-file', key1, '--gateway', 'http://127.0.0.1:9']);
    expect(down.code).toBe(1);
    expect(down.stderr.trim().split('\n')).toHaveLength(1);
    expect(down.stderr).toMatch(/^gitblock-node: cannot reach the gateway at http:\/\/127\.0\.0\.1:9/);
  });

  it('is idempotent: running it again, or any step again, posts nothing and pays nothing', async () => {
    const again = await runSettle(temporal, E, { taskQueue: net.taskQueue, wait: true });
    expect(again).toMatchObject({ epoch: E, status: 'settled' });
    const steps = createSettlementActivities({ db: net.db, schedule: net.schedule, chain: net.chain });
    for (const step of [steps.closeEpoch, steps.computeEpoch, steps.postEpochRoot, steps.confirmEpoch]) {
      expect(await step(E)).toEqual(again);
    }
    expect(await epochPostedEvents(s.rpcUrl, net.deployment, E)).toHaveLength(1);
    expect(await store(net.db).rewardProofs.countDocuments({ epoch: E })).toBe(2);
  });

  it('reports a settled epoch with `tsx workers/settle.ts`, and refuses bad input with one line', async () => {
    const run = (args: string[]) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'workers/settle.ts', ...args], {
        env: { ...process.env, TEMPORAL_ADDRESS: s.temporalAddress, TEMPORAL_NAMESPACE: s.temporalNamespace },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
    };
    const done = await run(['--epoch', String(E), '--task-queue', net.taskQueue]);
    expect(done.code).toBe(0);
    expect(done.stdout).toMatch(/^epoch 1000: settled$/m);
    expect(done.stdout).toMatch(/paid\s+12\.500000000000000001 GBT to 2 operators/);
    const bad = await run(['--epoch', '-3']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.split('\n')[0]).toMatch(/^settle: /);
  });

  it('records a void that comes after the payout as such', async () => {
    const late = await createLedgerActivities({ db: net.db }).voidAccrual({ requestId: 'r-3', reason: 'late verdict' });
    expect(late).toMatchObject({ voided: false, paidInEpoch: E });
    expect(await store(net.db).ledger.findOne({ _id: 'r-3' })).toMatchObject({ status: 'voided', voidedAfterPayout: true });
  });

  it('settles an epoch with nothing to pay as settled-empty, without posting', async () => {
    await createLedgerActivities({ db: net.db }).voidAccrual({ requestId: 'r-next', reason: 'spot check failed' });
    const summary = await net.settle(E + 1);
    expect(summary).toMatchObject({ epoch: E + 1, status: 'settled-empty', paid: '0', operators: 0 });
    expect(await epochPostedEvents(s.rpcUrl, net.deployment, E + 1)).toHaveLength(0);
  });

  it('refuses an epoch out of order, or one that has not ended', async () => {
    expect(await failureOf(net.settle(E + 3))).toMatch(/settle epoch 1002 before epoch 1003 \(EPOCH_OUT_OF_ORDER\)/);
    expect(await failureOf(net.settle(E + 2))).toMatch(/epoch 1002 runs until .* \(EPOCH_NOT_OVER\)/);
    expect(await store(net.db).epochs.findOne({ _id: E + 2 })).toBeNull();
  });
});

describe('a root already on chain', () => {
  it('fails loudly when it differs from the computed one, and never posts a second', async () => {
    const E = 1050;
    const net = await network(scheduleEndingAgo(E));
    await accrue(net.db, { id: 'x-1', operator: op1, amount: GBT, at: inEpoch(net.schedule, E) });
    // Someone with the settler key posted another root for this epoch.
    const forged = buildRewardsTree(BigInt(E), [{ operator: op2, amount: GBT }]);
    await mined(pub, walletFor(s.rpcUrl, testAccount(SETTLER)).writeContract({ address: net.deployment.distributor, abi: rewardsDistributorAbi, functionName: 'postEpoch', args: [BigInt(E), forged.root, GBT] }));
    expect(await failureOf(net.settle(E))).toMatch(/already has root 0x[0-9a-f]{64} on chain, but settlement computed .*EPOCH_ROOT_MISMATCH/);
    expect(await epochPostedEvents(s.rpcUrl, net.deployment, E)).toHaveLength(1);
    expect((await store(net.db).epochs.findOne({ _id: E }))?.status).toBe('computed');
  });
});

describe('the emission cap', () => {
  it('pays pro rata when accruals exceed the epoch’s emission, floors every share, and rolls the rest forward', async () => {
    // Epoch 0 may pay its emission, 4,564,277.18 GBT; operators accrued 3M + 2M GBT.
    const net = await network(scheduleEndingAgo(1), 2);
    const a1 = 3_000_000n * GBT + 1n;
    const a2 = 2_000_000n * GBT;
    await accrue(net.db, { id: 'p-1', operator: op1, amount: a1, at: inEpoch(net.schedule, 0) });
    await accrue(net.db, { id: 'p-2', operator: op2, amount: a2, at: inEpoch(net.schedule, 0) });
    await accrue(net.db, { id: 'p-3', operator: op1, amount: GBT, at: inEpoch(net.schedule, 1) });

    // Two confirmations: an epoch settles only once another block is mined on top of its post.
    const settling = net.settle(0);
    const testClient = createTestClient({ mode: 'anvil', chain: foundry, transport: http(s.rpcUrl) });
    const miner = setInterval(() => void testClient.mine({ blocks: 1 }).catch(() => {}), 500);
    cleanups.push(async () => clearInterval(miner));
    const summary = await settling;

    const emission = epochEmission(0);
    const share1 = (a1 * emission) / (a1 + a2);
    const share2 = (a2 * emission) / (a1 + a2);
    expect(summary).toMatchObject({ status: 'settled', capped: true, available: emission.toString(), accruedTotal: (a1 + a2).toString(), paid: (share1 + share2).toString() });
    expect(share1 + share2).toBeLessThanOrEqual(emission);
    const events = await epochPostedEvents(s.rpcUrl, net.deployment, 0);
    expect(events).toHaveLength(1);
    expect(events[0]!.args.total).toBe(share1 + share2);
    const head = await pub.getBlockNumber({ cacheTime: 0 });
    expect(head).toBeGreaterThanOrEqual(events[0]!.blockNumber + 1n);

    for (const [index, operator, share] of [[21, op1, share1], [22, op2, share2]] as [number, Address, bigint][]) {
      const proof = (await store(net.db).rewardProofs.findOne({ _id: `0:${operator}` }))!;
      expect(proof.amount).toBe(share.toString());
      const before = await gbtBalance(s.rpcUrl, net.deployment, operator);
      await mined(pub, walletFor(s.rpcUrl, testAccount(index)).writeContract({ address: net.deployment.distributor, abi: rewardsDistributorAbi, functionName: 'claim', args: [0n, operator, share, proof.proof] }));
      expect((await gbtBalance(s.rpcUrl, net.deployment, operator)) - before).toBe(share);
    }

    // Epoch 1 may pay its own emission plus what epoch 0 left (the floors' dust).
    const next = await net.settle(1);
    clearInterval(miner);
    expect(next).toMatchObject({ status: 'settled', capped: false, paid: GBT.toString(), available: (epochEmission(1) + emission - share1 - share2).toString() });
  });
});

describe('the weekly schedule', () => {
  it('is created once and updated after, and its tick settles the due epochs as settle-<epoch>', async () => {
    const E = 1090;
    const net = await network(scheduleEndingAgo(E, 30));
    await accrue(net.db, { id: 's-1', operator: op1, amount: 2n * GBT, at: inEpoch(net.schedule, E) });
    const scheduleId = unique('settlement-schedule');
    cleanups.push(() => temporal.schedule.getHandle(scheduleId).delete());
    expect(await ensureSettlementSchedule(temporal, { schedule: net.schedule, taskQueue: net.taskQueue, scheduleId })).toEqual({ scheduleId, created: true });
    expect(await ensureSettlementSchedule(temporal, { schedule: net.schedule, taskQueue: net.taskQueue, scheduleId, delaySeconds: 60 })).toEqual({ scheduleId, created: false });
    const handle = temporal.schedule.getHandle(scheduleId);
    const described = await handle.describe();
    const offset = (((net.schedule.genesis + 60) % 604_800) + 604_800) % 604_800;
    expect(described.spec.intervals).toEqual([{ every: 604_800_000, offset: offset * 1000 }]);
    expect(described.action).toMatchObject({ workflowType: 'settlementTickWorkflow', taskQueue: net.taskQueue });
    expect(described.policies.overlap).toBe('SKIP');

    await handle.trigger();
    const deadline = Date.now() + 30_000;
    let status: string | undefined;
    while (Date.now() < deadline) {
      status = (await store(net.db).epochs.findOne({ _id: E }))?.status;
      if (status === 'settled') break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(status).toBe('settled');
    expect(await epochPostedEvents(s.rpcUrl, net.deployment, E)).toHaveLength(1);
    const child = await temporal.workflow.getHandle(workflowIds.settlement(E)).describe();
    expect(child.searchAttributes[searchAttributes.epoch.name]).toEqual([E]);
  });
});

describe('claiming without gas money', () => {
  it('names the address and the ETH it needs, and claims once funded', async () => {
    const E = 1095;
    const net = await network(scheduleEndingAgo(E));
    const gw = await gateway(net.db);
    const key = generatePrivateKey();
    const operator = privateKeyToAccount(key).address;
    await accrue(net.db, { id: 'g-1', operator, amount: 4n * GBT, at: inEpoch(net.schedule, E) });
    expect(await net.settle(E)).toMatchObject({ status: 'settled' });
    const keyFile = writeKeyFile(key, 'operator.key');

    const broke = await cli(['rewards', 'claim', '--gateway', gw.url, '--key-file', keyFile, '--rpc', s.rpcUrl]);
    expect(broke.code).toBe(1);
    expect(broke.stderr.trim().split('\n')).toHaveLength(1);
    expect(broke.stderr).toMatch(
      new RegExp(`could not claim epoch ${E}: ${operator} holds 0 ETH on chain 31337, and this claim needs about 0\\.\\d+ ETH for gas \\(\\d+ gas at up to [\\d.]+ gwei\\): send ${operator} at least 0\\.\\d+ ETH`),
    );

    await createTestClient({ mode: 'anvil', chain: foundry, transport: http(s.rpcUrl) }).setBalance({ address: operator, value: 10n ** 18n });
    const claimed = await cli(['rewards', 'claim', '--gateway', gw.url, '--key-file', keyFile, '--rpc', s.rpcUrl]);
    expect(claimed.stderr).toBe('');
    expect(claimed.stdout).toMatch(new RegExp(`^epoch ${E}: claimed 4 GBT in tx 0x[0-9a-f]{64}$`, 'm'));
    expect(claimed.stdout).toMatch(new RegExp(`^balance 4 GBT at ${operator} \\(GBT token ${net.deployment.gbt}\\)$`, 'm'));
  }, 120_000);
});
