/**
 * What an operator has earned, read from the ledger, the epochs and their proofs (and claim
 * state on chain): the one computation `GET /v1/rewards/<operator>` and the operator's status
 * page both show.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Address, Hex } from 'viem';

import { rewardsDistributorAbi } from '../contracts/artifacts/index.ts';
import type { EpochStatus } from '../domain/settlement.ts';
import type { GatewayDeps } from './deps.ts';
import { RefreshedByKey } from './refreshed.ts';
import { type EpochDoc, store } from '../store/index.ts';

/** One epoch's reward for an operator, as the API shows it. Amounts are decimal strings of GBT base units. */
export interface RewardEpoch {
  epoch: number;
  /** settling: computed, root not yet confirmed on chain; settled: on chain, claim state unknown (no chain access). */
  status: 'settling' | 'claimable' | 'claimed' | 'settled';
  /** What the operator is paid for this epoch (the leaf amount). */
  amount: string;
  /** What it accrued in the epoch, before any emission cap. */
  accrued: string;
  root: Hex;
  /** Present once the root is on chain: claim(epoch, operator, amount, proof) on `distributor`. */
  proof?: Hex[];
  distributor?: Address;
  chainId?: number;
  postTx?: Hex;
}

export interface RewardsView {
  object: 'rewards';
  operator: Address;
  /** Accrued in epochs not yet computed: the pay is not fixed yet. */
  accrued: { amount: string; requests: number };
  /** Fixed in computed epochs whose root is not yet confirmed on chain. */
  settling: string;
  /** Paid in epochs whose root is on chain: claimable + claimed (+ unknown without chain access). */
  settled: string;
  claimable: string;
  claimed: string;
  epochs: RewardEpoch[];
}

const settlingStatuses: EpochStatus[] = ['computed', 'posted'];

/** `operator` checksummed. Claim state is read on chain when `deps.chain` is given; a failed read is logged and leaves 'settled'. */
export async function operatorRewards(deps: Pick<GatewayDeps, 'db' | 'chain'>, operator: Address, log: Pick<FastifyBaseLogger, 'warn'>): Promise<RewardsView> {
  const ledger = store(deps.db).ledger;
  const assignments = store(deps.db).epochEntries;
  const epochs = store(deps.db).epochs;
  const proofs = store(deps.db).rewardProofs;

  const byEpoch = new Map<number, EpochDoc>();
  for await (const doc of epochs.find({})) byEpoch.set(doc._id, doc);

  const forms = [operator, operator.toLowerCase()];
  const epochOf = new Map<string, number>();
  for await (const a of assignments.find({ operator: { $in: forms } }, { projection: { _id: 1, epoch: 1 } })) epochOf.set(a._id, a.epoch);
  let accrued = 0n;
  let requests = 0;
  for await (const entry of ledger.find({ operator: { $in: forms }, status: 'accrued' }, { projection: { _id: 1, amount: 1 } })) {
    const epoch = epochOf.get(entry._id);
    const status = epoch === undefined ? undefined : byEpoch.get(epoch)?.status;
    // Only pay not yet fixed: later statuses show up per epoch below (or paid nothing).
    if (status === undefined || status === 'closing' || status === 'closed') {
      accrued += BigInt(entry.amount);
      requests++;
    }
  }

  const rows: RewardEpoch[] = [];
  for await (const proof of proofs.find({ operator }).sort({ epoch: 1 })) {
    const epoch = byEpoch.get(proof.epoch);
    // A proof of an interrupted attempt with another root is not this epoch's.
    if (!epoch || epoch.root !== proof.root) continue;
    const base = { epoch: proof.epoch, amount: proof.amount, accrued: proof.accrued, root: proof.root };
    if (settlingStatuses.includes(epoch.status)) {
      rows.push({ ...base, status: 'settling' });
    } else if (epoch.status === 'settled') {
      rows.push({
        ...base,
        status: 'settled',
        proof: proof.proof,
        ...(epoch.distributor ? { distributor: epoch.distributor } : {}),
        ...(epoch.chainId !== undefined ? { chainId: epoch.chainId } : {}),
        ...(epoch.postTx ? { postTx: epoch.postTx } : {}),
      });
    }
  }

  // Claim state lives on chain; without chain access (or with the chain unreachable) it stays 'settled'.
  if (deps.chain) {
    const chain = deps.chain;
    await Promise.all(
      rows.map(async (row) => {
        if (row.status !== 'settled' || !row.distributor) return;
        try {
          const claimed = await chain.readContract({ address: row.distributor, abi: rewardsDistributorAbi, functionName: 'isClaimed', args: [BigInt(row.epoch), operator] });
          row.status = claimed ? 'claimed' : 'claimable';
        } catch (err) {
          log.warn({ err }, 'cannot read claim state');
        }
      }),
    );
  }

  const sum = (statuses: RewardEpoch['status'][]) => rows.filter((r) => statuses.includes(r.status)).reduce((s, r) => s + BigInt(r.amount), 0n).toString();
  return {
    object: 'rewards',
    operator,
    accrued: { amount: accrued.toString(), requests },
    settling: sum(['settling']),
    settled: sum(['claimable', 'claimed', 'settled']),
    claimable: sum(['claimable']),
    claimed: sum(['claimed']),
    epochs: rows,
  };
}

/**
 * One gateway's operator rewards, computed by `operatorRewards` and shared by `GET
 * /v1/rewards/<operator>` and the operator's status page (one source, not a second
 * computation). The JSON is computed on every call (an operator who has just claimed must see
 * it); the page shows the latest computation, a few seconds old at most, and computes anew in
 * the background: on FerretDB each computation scans the ledger, seconds under load.
 */
export class RewardsViews {
  private readonly cache: RefreshedByKey<Address, RewardsView>;

  constructor(deps: Pick<GatewayDeps, 'db' | 'chain' | 'now'>, log: Pick<FastifyBaseLogger, 'warn'>, maxAgeMs = 5_000) {
    this.cache = new RefreshedByKey((operator) => operatorRewards(deps, operator, log), maxAgeMs, 10_000, deps.now);
  }

  /** Computed now (and kept for the page). `operator` checksummed. */
  fresh(operator: Address): Promise<RewardsView> {
    return this.cache.fresh(operator);
  }

  /** The latest computation, recomputed in the background when older than a few seconds. */
  recent(operator: Address): Promise<RewardsView> {
    return this.cache.get(operator);
  }
}
