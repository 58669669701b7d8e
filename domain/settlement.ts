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

/** Stable error codes (ApplicationFailure `type`s). All are non-retryable: retrying cannot fix them. */
export const settlementErrors = {
  /** The control worker has no deployment file or settler key: it cannot post roots. */
  notConfigured: 'SETTLEMENT_NOT_CONFIGURED',
  /** Not an epoch number. */
  invalidEpoch: 'EPOCH_INVALID',
  /** The epoch's week has not ended yet. */
  notOver: 'EPOCH_NOT_OVER',
  /** Epochs settle one after another; this one is not next. */
  outOfOrder: 'EPOCH_OUT_OF_ORDER',
  /** A step ran before the one it depends on. */
  wrongState: 'EPOCH_WRONG_STATE',
  /** The chain holds a different root for this epoch than the one computed: stop, a human must look. */
  rootMismatch: 'EPOCH_ROOT_MISMATCH',
  /** The proofs stored for the API do not match the computed root: refusing to post. */
  proofsMissing: 'EPOCH_PROOFS_MISSING',
  /** The posted root's transaction is no longer on chain (reorg): post again. */
  postMissing: 'EPOCH_POST_MISSING',
  /** The chain refused the post for a reason a retry cannot fix (role, pause, pool). */
  postRejected: 'EPOCH_POST_REJECTED',
  /** Invalid input to a ledger activity. */
  ledgerBadInput: 'LEDGER_BAD_INPUT',
  /** A ledger entry of the epoch has a malformed amount or operator: stop before paying anything. */
  ledgerCorrupt: 'LEDGER_CORRUPT',
} as const;

export const nonRetryableSettlementErrors: string[] = Object.values(settlementErrors);

/** Where the settlement activities may be stopped by a test (see workers/control-main.ts). */
export type SettlementPoint = 'closed' | 'computed' | 'post-sent' | 'posted' | 'settled';
export const settlementPoints: readonly SettlementPoint[] = ['closed', 'computed', 'post-sent', 'posted', 'settled'];
