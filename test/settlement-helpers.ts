/**
 * Shared by the settlement tests: a fresh GBT deployment per test database, key files, ledger
 * accruals written directly, and chain reads. Each test file uses its own anvil accounts (see
 * the file's header) and its own range of epoch numbers, because `settle-<epoch>` ids are
 * unique in the one Temporal namespace every test file shares.
 */
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Db } from 'mongodb';
import type { Address, Hex } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';

import { connectSettlementChain, type SettlementChain } from '../activities/settlement-chain.ts';
import { gbtAbi, rewardsDistributorAbi } from '../contracts/artifacts/index.ts';
import { deployGitBlock, toDeploymentFile, type GitBlockDeployment } from '../contracts/deploy.ts';
import { buildAirdropTree } from '../contracts/merkle.ts';
import { publicClientFor, testAccount, testAccountKey, walletFor } from '../contracts/testing.ts';
import type { EpochSchedule } from '../domain/emission.ts';
import { type LedgerDoc, store } from '../store/index.ts';

const randomAddress = (): Address => privateKeyToAccount(generatePrivateKey()).address;

/** Deploys GBT and the distributor from test account `index`, which is also the settler. */
export async function deployRewards(rpcUrl: string, index: number): Promise<GitBlockDeployment> {
  const now = (await publicClientFor(rpcUrl).getBlock({ blockTag: 'latest' })).timestamp;
  return deployGitBlock({
    rpcUrl,
    walletClient: walletFor(rpcUrl, testAccount(index)),
    treasury: randomAddress(),
    settler: testAccount(index).address,
    team: { beneficiary: randomAddress(), start: now + 86_400n, cliffSeconds: 86_400n, durationSeconds: 86_400n * 365n },
    airdropRoot: buildAirdropTree([{ account: randomAddress(), amount: 1n }]).root,
  });
}

/** A private key file with mode 0600 in a fresh temporary folder. */
export function writeKeyFile(key: Hex, name = 'key'): string {
  const file = join(mkdtempSync(join(tmpdir(), 'gitblock-key-')), name);
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

export function writeDeploymentFile(deployment: GitBlockDeployment): string {
  const file = join(mkdtempSync(join(tmpdir(), 'gitblock-deployment-')), 'deployment.json');
  writeFileSync(file, JSON.stringify(toDeploymentFile(deployment)));
  return file;
}

/** The settler of `deployment`, as the control worker connects it. */
export function settlerChain(rpcUrl: string, deployment: GitBlockDeployment, index: number, confirmations = 1): Promise<SettlementChain> {
  return connectSettlementChain({ rpcUrl, deployment, settlerKey: testAccountKey(index), confirmations, pollingIntervalMs: 100 });
}

/** A schedule of `epochSeconds`-long epochs in which `epoch` ended `agoSeconds` ago. */
export function scheduleEndingAgo(epoch: number, agoSeconds = 60, epochSeconds = 604_800): EpochSchedule {
  const end = Math.floor(Date.now() / 1000) - agoSeconds;
  return { genesis: end - (epoch + 1) * epochSeconds, epochSeconds };
}

/** Writes an accrual straight into the ledger, as `accrueReward` would. */
export async function accrue(db: Db, entry: { id: string; operator: Address; amount: bigint; at: Date; nodeId?: string }): Promise<void> {
  const doc: LedgerDoc = {
    _id: entry.id,
    nodeId: entry.nodeId ?? 'node-test',
    operator: entry.operator,
    modelId: 'gitblock-tiny',
    completionTokens: 1,
    amount: entry.amount.toString(),
    status: 'accrued',
    createdAt: entry.at,
  };
  await store(db).ledger.insertOne(doc);
}

export function gbtBalance(rpcUrl: string, deployment: GitBlockDeployment, who: Address): Promise<bigint> {
  return publicClientFor(rpcUrl).readContract({ address: deployment.gbt, abi: gbtAbi, functionName: 'balanceOf', args: [who] });
}

/** Every EpochPosted event of `epoch` on the deployment's distributor. */
export async function epochPostedEvents(rpcUrl: string, deployment: GitBlockDeployment, epoch: number) {
  return publicClientFor(rpcUrl).getContractEvents({
    address: deployment.distributor,
    abi: rewardsDistributorAbi,
    eventName: 'EpochPosted',
    args: { epoch: BigInt(epoch) },
    fromBlock: deployment.blockNumber,
    toBlock: 'latest',
  });
}

export function epochRoot(rpcUrl: string, deployment: GitBlockDeployment, epoch: number): Promise<Hex> {
  return publicClientFor(rpcUrl).readContract({ address: deployment.distributor, abi: rewardsDistributorAbi, functionName: 'epochRoot', args: [BigInt(epoch)] });
}
