/**
 * Settling one epoch of many operators, on a private stack (MongoDB-wire server and anvil):
 * the settlement steps run as the control worker runs them (the activity functions, without
 * the Temporal round trips), each timed: close (assign the epoch's accruals), compute (sum per
 * operator, emission cap, Merkle tree, store one proof document per operator, record the root),
 * post (postEpoch transaction and receipt) and confirm. The tree alone is also timed in memory,
 * and the gas of claims is read from their receipts.
 *
 *   npx tsx bench/settlement.ts [--operators 100000] [--claims 3]
 */
import { performance } from 'node:perf_hooks';
import { createWalletClient, getAddress, http, toHex, type Address } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { foundry } from 'viem/chains';

import { connectSettlementChain } from '../activities/settlement-chain.ts';
import { createSettlementActivities } from '../activities/settlement.ts';
import { connectMongo } from '../connections/mongo.ts';
import { rewardsDistributorAbi } from '../contracts/artifacts/index.ts';
import { ANVIL_DEFAULT_KEY, deployGitBlock } from '../contracts/deploy.ts';
import { buildAirdropTree } from '../contracts/merkle.ts';
import { buildRewardsTreeOffThread } from '../activities/rewards-tree.ts';
import { epochWindow, GBT } from '../domain/emission.ts';
import { intFlag, table, withStack } from './harness.ts';
import { type LedgerDoc, store } from '../store/index.ts';

const operatorCount = intFlag('operators', 100_000);
const claims = intFlag('claims', 3);
const EPOCH = 300; // past the 208 emitting weeks: the whole pool is available, nothing is capped

/** Deterministic distinct operator addresses (no keys needed: anyone may submit a claim). */
function operatorAddress(i: number): Address {
  return getAddress(toHex(BigInt(i + 1) * 0x9e3779b97f4a7c15n + 0x1000n, { size: 20 }));
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

await withStack(async (stack) => {
  const e = stack.endpoints;
  const mongo = await connectMongo(e.mongodbUri, 'bench-settlement');
  const db = mongo.db;
  await db.dropDatabase();
  const deployer = privateKeyToAccount(ANVIL_DEFAULT_KEY);
  const deployment = await deployGitBlock({
    rpcUrl: e.rpcUrl,
    deployerKey: ANVIL_DEFAULT_KEY,
    treasury: operatorAddress(10_000_000),
    settler: deployer.address,
    team: { beneficiary: operatorAddress(10_000_001), start: BigInt(Math.floor(Date.now() / 1000) + 86_400), cliffSeconds: 0n, durationSeconds: 86_400n },
    airdropRoot: buildAirdropTree([{ account: operatorAddress(10_000_002), amount: 1n }]).root,
  });
  const chain = await connectSettlementChain({ rpcUrl: e.rpcUrl, deployment, settlerKey: ANVIL_DEFAULT_KEY, confirmations: 1, pollingIntervalMs: 50 });
  const now = Math.floor(Date.now() / 1000);
  const schedule = { genesis: now - (EPOCH + 1) * 604_800 - 60, epochSeconds: 604_800 };
  const at = new Date(epochWindow(EPOCH, schedule).startMs + 1_000);

  console.log(`Seeding ${operatorCount.toLocaleString('en-US')} accruals (one per operator)...`);
  const seedStart = performance.now();
  const amounts: bigint[] = [];
  for (let i = 0; i < operatorCount; i += 5_000) {
    const docs: LedgerDoc[] = [];
    for (let j = i; j < Math.min(operatorCount, i + 5_000); j++) {
      const amount = BigInt(j % 997) * 10n ** 15n + 10n ** 14n;
      amounts.push(amount);
      docs.push({ _id: `req-${j}`, nodeId: `node-${j}`, operator: operatorAddress(j), modelId: 'smollm2-135m', completionTokens: 100, amount: amount.toString(), status: 'accrued', createdAt: at });
    }
    await store(db).ledger.insertMany(docs, { ordered: false });
  }
  const seedMs = performance.now() - seedStart;

  // The tree alone, in memory, on the same entries.
  const treeStart = performance.now();
  const tree = await buildRewardsTreeOffThread(BigInt(EPOCH), amounts.map((amount, i) => ({ operator: operatorAddress(i), amount })));
  const treeMs = performance.now() - treeStart;

  const steps = createSettlementActivities({ db, schedule, chain });
  const timed = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
    const start = performance.now();
    const result = await fn();
    return [result, performance.now() - start];
  };
  const [, closeMs] = await timed(() => steps.closeEpoch(EPOCH));
  const [computed, computeMs] = await timed(() => steps.computeEpoch(EPOCH));
  const [, postMs] = await timed(() => steps.postEpochRoot(EPOCH));
  const [settled, confirmMs] = await timed(() => steps.confirmEpoch(EPOCH));
  if (settled.status !== 'settled' || computed.root !== tree.root) throw new Error(`unexpected settlement: ${JSON.stringify(settled)}`);
  const proofs = await store(db).rewardProofs.countDocuments({ epoch: EPOCH });

  // Claims, relayed by the deployer (tokens go to the operator named in the leaf).
  const wallet = createWalletClient({ account: deployer, chain: foundry, transport: http(e.rpcUrl) });
  const gas: bigint[] = [];
  let proofLength = 0;
  for (let k = 0; k < claims; k++) {
    const operator = operatorAddress(Math.floor((k * operatorCount) / claims));
    const doc = (await store(db).rewardProofs.findOne({ _id: `${EPOCH}:${operator}` }))!;
    proofLength = doc.proof.length;
    const hash = await wallet.writeContract({ address: deployment.distributor, abi: rewardsDistributorAbi, functionName: 'claim', args: [BigInt(EPOCH), operator, BigInt(doc.amount), doc.proof] });
    const receipt = await chain.publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== 'success') throw new Error(`claim ${hash} reverted`);
    gas.push(receipt.gasUsed);
  }
  await db.dropDatabase();
  await mongo[Symbol.asyncDispose]();

  const settleMs = closeMs + computeMs + postMs + confirmMs;
  console.log(`\nSettlement of one epoch, ${operatorCount.toLocaleString('en-US')} operators (${proofs.toLocaleString('en-US')} proofs stored, ${proofLength} hashes each)\n`);
  console.log(
    table([
      { step: 'seed the ledger (not settlement)', time: seconds(seedMs) },
      { step: 'close: assign accruals to the epoch', time: seconds(closeMs) },
      { step: 'compute: sums, cap, tree, store proofs, root', time: seconds(computeMs) },
      { step: '  of which the Merkle tree (in memory)', time: seconds(treeMs) },
      { step: 'post: postEpoch transaction + receipt', time: seconds(postMs) },
      { step: 'confirm (1 block)', time: seconds(confirmMs) },
      { step: 'settle total (close → settled)', time: seconds(settleMs) },
    ]),
  );
  console.log(`\nGas of a claim (proof of ${proofLength} hashes): first claim of the epoch ${gas[0]}, later claims ${gas.slice(1).join(', ') || '-'}`);
  console.log(`Heap after: ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB, RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
  console.log(`Total GBT posted: ${BigInt(settled.paid ?? '0') / GBT} GBT`);
});
