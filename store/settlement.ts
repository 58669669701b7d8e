/**
 * Settlement's records (activities/settlement.ts): one per epoch (`epochs`, moved forward only),
 * one claim per operator and epoch (`reward_proofs`), and the sequence of epochs (`epoch_links`).
 */
import type { Address, Hex } from 'viem';
import type { EpochStatus } from '../domain/settlement.ts';
import { storedCollection } from './collection.ts';

export interface EpochDoc {
  _id: number;
  status: EpochStatus;
  windowStart: Date;
  windowEnd: Date;
  /** Accruals created in [assignFrom, windowEnd) are assigned at close; no lower bound for the first epoch settled. */
  assignFrom?: Date;
  createdAt: Date;
  closedAt?: Date;
  entries?: number;
  emission?: string;
  cumulativeEmission?: string;
  paidBefore?: string;
  available?: string;
  accruedTotal?: string;
  paid?: string;
  capped?: boolean;
  operators?: number;
  root?: Hex;
  computedAt?: Date;
  chainId?: number;
  distributor?: Address;
  postTx?: Hex;
  postBlock?: string;
  postedAt?: Date;
  settledAt?: Date;
}

/** One operator's claim for one epoch, stored before the root is posted; served by the gateway. */
export interface ProofDoc {
  _id: string; // `${epoch}:${operator}`: one leaf per operator and epoch
  epoch: number;
  operator: Address;
  /** Paid (the leaf amount), GBT base units. */
  amount: string;
  /** Accrued before any emission cap. */
  accrued: string;
  proof: Hex[];
  root: Hex;
}

/** The settlement sequence: `after:<epoch>` (or `first`) names the one epoch allowed to follow. */
export interface LinkDoc {
  _id: string;
  epoch: number;
  at: Date;
}

export const epochs = storedCollection<EpochDoc>('epochs');

export const rewardProofs = storedCollection<ProofDoc>('reward_proofs', [{ key: { epoch: 1, root: 1 } }, { key: { operator: 1 } }]);

export const epochLinks = storedCollection<LinkDoc>('epoch_links');
