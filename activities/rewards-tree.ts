/**
 * The epoch's rewards tree, built off the main thread (activities/rewards-tree-worker.mjs) with
 * the same library and leaf encoding as contracts/merkle.ts (`StandardMerkleTree` over
 * (uint64 epoch, address operator, uint256 amount)), so its root and proofs are the ones
 * RewardsDistributor verifies.
 */
import { Worker } from 'node:worker_threads';
import type { Address, Hex } from 'viem';
import type { RewardClaim, RewardEntry, RewardsTree } from '../contracts/merkle.ts';

const workerUrl = new URL('./rewards-tree-worker.mjs', import.meta.url);

/**
 * Builds the rewards tree of `epoch` on a worker thread; the caller's event loop stays free.
 * @param entries one per operator (checksummed, distinct), amounts > 0
 */
export async function buildRewardsTreeOffThread(epoch: bigint, entries: readonly RewardEntry[]): Promise<RewardsTree> {
  if (entries.length === 0) throw new Error('a rewards tree needs at least one entry');
  const seen = new Set<Address>();
  let total = 0n;
  for (const e of entries) {
    if (typeof e.amount !== 'bigint' || e.amount <= 0n) throw new Error(`amount for ${e.operator} must be a positive bigint`);
    if (seen.has(e.operator)) throw new Error(`operator ${e.operator} appears twice in epoch ${epoch}`);
    seen.add(e.operator);
    total += e.amount;
  }
  const worker = new Worker(workerUrl);
  try {
    const result = await new Promise<{ root: Hex; proofs: Hex[][] }>((resolve, reject) => {
      worker.once('message', (m: { root: Hex; proofs: Hex[][] } | { error: string }) => ('error' in m ? reject(new Error(`rewards tree: ${m.error}`)) : resolve(m)));
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`rewards tree worker exited (${code})`)));
      worker.postMessage({ epoch: epoch.toString(), entries: entries.map((e) => [e.operator, e.amount.toString()]) });
    });
    const claims = new Map<Address, RewardClaim>();
    entries.forEach((e, i) => claims.set(e.operator, { epoch, operator: e.operator, amount: e.amount, proof: result.proofs[i]! }));
    return { epoch, root: result.root, total, claims };
  } finally {
    await worker.terminate();
  }
}
