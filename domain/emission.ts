/**
 * The node-rewards emission schedule and the epoch arithmetic of settlement. Pure and bigint
 * only: no clock, no floating point touches an amount.
 *
 * Schedule. The 400,000,000 GBT node-rewards pool is emitted over 208 weekly epochs (4 years),
 * decaying by 1% a week:
 *
 *   emission(k) = floor(POOL × 0.99^k × 0.01 / (1 − 0.99^208))        for 0 ≤ k < 208
 *               = floor(POOL × 99^k × 100^(207−k) / (100^208 − 99^208))   (exact integer form)
 *   emission(k) = 0                                                    for k ≥ 208
 *
 * i.e. 4,564,277.18 GBT in week 0, 569,976.95 GBT in week 207; 46.4% of the pool is emitted in
 * year 1, 74.0% by the end of year 2, 90.3% by year 3. Each week's floor leaves less than one
 * base unit behind; the sum of those remainders (104 base units) is added to week 207 so the
 * 208 weeks emit exactly the pool, never more.
 *
 * Payout. An epoch may pay what has been emitted up to and including it, less what earlier
 * epochs paid: `available(e) = cumulativeEmission(e) − paidBefore(e)`. Emission an epoch does
 * not use therefore rolls forward, and the total ever paid never exceeds the pool. The epoch
 * pays `min(accrued, available)`: in full when it fits, otherwise pro rata.
 *
 * Rounding. A pro rata share is `floor(accrued_i × available / accruedTotal)`; the floors sum to
 * at most `available` (each is ≤ its exact share), so rounding never over-pays. What the floors
 * leave (fewer base units than there are operators) is simply not paid: it stays in the pool
 * and rolls forward like any unspent emission.
 */
import { codedError } from './errors.ts';

/** Base units per GBT (18 decimals). */
export const GBT = 10n ** 18n;
/** The node-rewards pool: 40% of the 1,000,000,000 GBT supply, held by RewardsDistributor. */
export const NODE_REWARDS_POOL = 400_000_000n * GBT;
/** Number of epochs that emit: 4 years of weeks. */
export const EMISSION_EPOCHS = 208;
/** Weekly decay: each epoch emits 99/100 of the one before. */
export const EMISSION_DECAY = { numerator: 99n, denominator: 100n } as const;
/** One epoch is one week. */
export const EPOCH_SECONDS = 7 * 24 * 60 * 60;
/** Default genesis: Monday 2026-01-05 00:00:00 UTC (unix seconds). Epoch 0 is the week after it. */
export const DEFAULT_GENESIS = 1_767_571_200;

/** Epoch 0 starts at `genesis` (unix seconds); epoch e covers [genesis + e·len, genesis + (e+1)·len). */
export interface EpochSchedule {
  genesis: number;
  epochSeconds: number;
}

export const defaultEpochSchedule: EpochSchedule = { genesis: DEFAULT_GENESIS, epochSeconds: EPOCH_SECONDS };

const { emissions, cumulative } = buildTable();

function buildTable(): { emissions: bigint[]; cumulative: bigint[] } {
  const n = BigInt(EMISSION_EPOCHS);
  const { numerator: r, denominator: d } = EMISSION_DECAY;
  // Exact geometric sum: Σ_{k<n} E0·(r/d)^k = POOL  ⇔  E0 = POOL·d^(n−1)·(d−r)/(d^n − r^n).
  const denominator = d ** n - r ** n;
  const emissions: bigint[] = [];
  let sum = 0n;
  for (let k = 0n; k < n; k++) {
    const e = (NODE_REWARDS_POOL * (d - r) * r ** k * d ** (n - 1n - k)) / denominator;
    emissions.push(e);
    sum += e;
  }
  // The floors leave a few base units; the last week emits them, so the schedule sums to the pool.
  emissions[EMISSION_EPOCHS - 1] = emissions[EMISSION_EPOCHS - 1]! + (NODE_REWARDS_POOL - sum);
  const cumulative: bigint[] = [];
  let running = 0n;
  for (const e of emissions) cumulative.push((running += e));
  return { emissions, cumulative };
}

/** A bad epoch number or amount given to the emission functions. */
export class EmissionInputError extends codedError('EMISSION_INPUT_INVALID') {
  override name = 'EmissionInputError';
}

function checkEpoch(epoch: number): number {
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new EmissionInputError(`epoch must be a non-negative integer, got ${epoch}`);
  return epoch;
}

function checkSchedule(schedule: EpochSchedule): EpochSchedule {
  if (!Number.isSafeInteger(schedule.genesis) || schedule.genesis < 0) throw new EmissionInputError(`genesis must be unix seconds, got ${schedule.genesis}`);
  if (!Number.isSafeInteger(schedule.epochSeconds) || schedule.epochSeconds <= 0) throw new EmissionInputError(`epoch length must be a positive number of seconds, got ${schedule.epochSeconds}`);
  return schedule;
}

/** GBT base units emitted in `epoch` (0 from epoch 208 on). */
export function epochEmission(epoch: number): bigint {
  return emissions[checkEpoch(epoch)] ?? 0n;
}

/** GBT base units emitted in epochs 0..epoch inclusive (the whole pool from epoch 207 on). */
export function cumulativeEmission(epoch: number): bigint {
  return cumulative[Math.min(checkEpoch(epoch), EMISSION_EPOCHS - 1)]!;
}

/** What `epoch` may pay: everything emitted through it, less what earlier epochs paid; never negative. */
export function availableEmission(epoch: number, paidBefore: bigint): bigint {
  if (paidBefore < 0n) throw new EmissionInputError(`paid-before must be >= 0, got ${paidBefore}`);
  const left = cumulativeEmission(epoch) - paidBefore;
  return left > 0n ? left : 0n;
}

/** The epoch a unix-ms time falls in; -1 before genesis. */
export function epochAt(timeMs: number, schedule: EpochSchedule): number {
  checkSchedule(schedule);
  const seconds = Math.floor(timeMs / 1000);
  if (seconds < schedule.genesis) return -1;
  return Math.floor((seconds - schedule.genesis) / schedule.epochSeconds);
}

/** The epoch's window as unix ms: [startMs, endMs). */
export function epochWindow(epoch: number, schedule: EpochSchedule): { startMs: number; endMs: number } {
  checkEpoch(epoch);
  checkSchedule(schedule);
  const startMs = (schedule.genesis + epoch * schedule.epochSeconds) * 1000;
  const endMs = startMs + schedule.epochSeconds * 1000;
  if (!Number.isSafeInteger(endMs)) throw new EmissionInputError(`epoch ${epoch} ends beyond representable time`);
  return { startMs, endMs };
}

/** The last epoch whose window has fully ended at `nowMs`; -1 when none has. */
export function lastCompleteEpoch(nowMs: number, schedule: EpochSchedule): number {
  return epochAt(nowMs, schedule) - 1;
}

export interface EpochPayout<K> {
  /** Amount paid per key, in input order; zero shares (possible when capped) are left out. */
  shares: [K, bigint][];
  accruedTotal: bigint;
  /** Sum of `shares`: what the epoch posts. ≤ min(accruedTotal, available). */
  paid: bigint;
  /** True when accruals exceeded the available emission and were cut pro rata. */
  capped: boolean;
}

/**
 * Shares `available` among accruals: in full when they fit, else pro rata with each share
 * floored, so the sum never exceeds `available`.
 */
export function epochPayout<K>(accrued: Iterable<[K, bigint]>, available: bigint): EpochPayout<K> {
  if (available < 0n) throw new EmissionInputError(`available must be >= 0, got ${available}`);
  const entries = [...accrued];
  let accruedTotal = 0n;
  for (const [key, amount] of entries) {
    if (typeof amount !== 'bigint' || amount < 0n) throw new EmissionInputError(`accrual for ${String(key)} must be a non-negative bigint, got ${String(amount)}`);
    accruedTotal += amount;
  }
  const capped = accruedTotal > available;
  const shares: [K, bigint][] = [];
  let paid = 0n;
  for (const [key, amount] of entries) {
    const share = capped ? (amount * available) / accruedTotal : amount;
    if (share === 0n) continue;
    shares.push([key, share]);
    paid += share;
  }
  return { shares, accruedTotal, paid, capped };
}
