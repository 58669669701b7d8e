/**
 * What the settlement workflow, its activities, the gateway and the CLIs share: the life cycle
 * of an epoch and the stable error codes (ApplicationFailure types) that workflows branch on.
 */

/**
 * An epoch's record (`epochs` collection, `_id` = epoch) moves forward only:
 *   closing → closed → computed → posted → settled
 *                    ↘ settled-empty (nothing to pay: no post)
 * Each step's activity checks the status first, so a retry resumes instead of repeating.
 */
export type EpochStatus = 'closing' | 'closed' | 'computed' | 'posted' | 'settled' | 'settled-empty';

export const finalEpochStatuses: readonly EpochStatus[] = ['settled', 'settled-empty'];

export function isFinalEpochStatus(status: EpochStatus): boolean {
  return finalEpochStatuses.includes(status);
}

/** A settlement's outcome, as the workflow returns it and `epochStatus` reports it. Amounts are decimal strings of GBT base units. */
export interface EpochSummary {
  epoch: number;
  status: EpochStatus;
  windowStartMs: number;
  windowEndMs: number;
  /** Accruals assigned to this epoch at close. */
  entries?: number | undefined;
  accruedTotal?: string | undefined;
  /** What this epoch could pay: emission through it, less what earlier epochs paid. */
  available?: string | undefined;
  /** What it pays (the posted total); ≤ min(accruedTotal, available). */
  paid?: string | undefined;
  capped?: boolean | undefined;
  operators?: number | undefined;
  root?: string | undefined;
  postTx?: string | undefined;
  postBlock?: string | undefined;
}

/** Stable error codes (ApplicationFailure `type`s), in the one registry (domain/failures.ts). */
export { nonRetryableSettlementErrors, settlementErrors } from './failures.ts';

/** Where the settlement activities may be stopped by a test (see workers/control-main.ts). */
export type SettlementPoint = 'closed' | 'computed' | 'post-sent' | 'posted' | 'settled';
export const settlementPoints: readonly SettlementPoint[] = ['closed', 'computed', 'post-sent', 'posted', 'settled'];
