/**
 * What settlement adds to the reward ledger (`ledger`, written by activities/requests.ts):
 * voiding an accrual, and assigning accruals to the epoch that pays them.
 *
 * Both are unique inserts, never updates a settlement depends on. FerretDB (our local
 * MongoDB-wire server) applies an update as read-modify-write without isolation, so two
 * concurrent updates of one document can lose one write; and its updateMany is far too slow for
 * an epoch (10,000 accruals took 500 s in bench/settlement.ts). So:
 *   - a void is a `ledger_voids` document keyed by the request id (the ledger entry's status
 *     is set to 'voided' too, for readers, but settlement trusts the void record);
 *   - an assignment is an `epoch_entries` document keyed by the request id, holding the epoch
 *     and a copy of (operator, amount): a request can be assigned to one epoch only, ever.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { Collection, Db } from 'mongodb';
import { isDuplicateKey } from '../connections/mongo.ts';
import { settlementErrors } from '../domain/settlement.ts';
import { store, type EpochEntry } from '../store/index.ts';


export interface VoidInput {
  requestId: string;
  reason: string;
}

export interface VoidResult {
  requestId: string;
  /** True when the void keeps the accrual from being paid; false when its epoch had already fixed its payout. */
  voided: boolean;
  /** This request was voided before (the first reason is kept). */
  alreadyVoided: boolean;
  /** No accrual existed yet: a voided placeholder now stops one from being created. */
  placeholder: boolean;
  /** Set when the accrual was already in a computed epoch: it was paid there. */
  paidInEpoch?: number | undefined;
}


export function createLedgerActivities(deps: { db: Db; now?: () => Date }) {
  const now = deps.now ?? (() => new Date());
  const { ledger, ledgerVoids: voids, epochEntries: assignments, epochs } = store(deps.db);

  return {
    /**
     * Voids the accrual of `requestId` (a failed spot check): it is never paid, and the reason
     * stays on record. Idempotent: voiding twice keeps the first reason. Voiding before the
     * accrual exists leaves a voided placeholder under the request id, so the accrual (a unique
     * insert on the same id) can no longer be created. An accrual in an epoch whose payout is
     * already fixed (computed or later) is marked voided after payout: it was paid.
     */
    async voidAccrual(input: VoidInput): Promise<VoidResult> {
      const { requestId, reason } = input ?? ({} as Partial<VoidInput>);
      if (typeof requestId !== 'string' || requestId.length === 0 || requestId.length > 128) {
        throw ApplicationFailure.nonRetryable(`voidAccrual: request id must be 1-128 characters`, settlementErrors.ledgerBadInput);
      }
      if (typeof reason !== 'string' || reason.trim().length === 0 || reason.length > 1000) {
        throw ApplicationFailure.nonRetryable(`voidAccrual: reason must be 1-1000 characters`, settlementErrors.ledgerBadInput);
      }
      const at = now();
      let alreadyVoided = false;
      try {
        await voids.insertOne({ _id: requestId, reason, at });
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        alreadyVoided = true;
      }
      const record = (await voids.findOne({ _id: requestId }))!;

      let placeholder = false;
      let entry = await ledger.findOne({ _id: requestId });
      if (!entry) {
        try {
          await ledger.insertOne({
            _id: requestId,
            nodeId: '',
            operator: '',
            modelId: '',
            completionTokens: 0,
            amount: '0',
            status: 'voided',
            voidReason: record.reason,
            voidedAt: record.at,
            createdAt: record.at,
          });
          placeholder = true;
        } catch (err) {
          if (!isDuplicateKey(err)) throw err;
          // The accrual was inserted meanwhile: void it below.
        }
        entry = await ledger.findOne({ _id: requestId });
      }
      let paidInEpoch: number | undefined;
      const assigned = await assignments.findOne({ _id: requestId });
      if (assigned) {
        const epoch = await epochs.findOne({ _id: assigned.epoch });
        // Computed (or later) means the epoch's totals are fixed: this accrual is in its root.
        if (epoch && epoch.status !== 'closing' && epoch.status !== 'closed') paidInEpoch = assigned.epoch;
      }
      if (entry && (entry.status !== 'voided' || (paidInEpoch !== undefined && !entry.voidedAfterPayout))) {
        await ledger.updateOne(
          { _id: requestId },
          { $set: { status: 'voided', voidReason: entry.voidReason ?? record.reason, voidedAt: entry.voidedAt ?? record.at, ...(paidInEpoch !== undefined ? { voidedAfterPayout: true } : {}) } },
        );
      }
      return { requestId, voided: paidInEpoch === undefined, alreadyVoided, placeholder, ...(paidInEpoch !== undefined ? { paidInEpoch } : {}) };
    },
  };
}

export type LedgerActivities = ReturnType<typeof createLedgerActivities>;

const onlyDuplicates = (err: unknown): boolean => {
  const errors = (err as { writeErrors?: unknown }).writeErrors;
  const list = Array.isArray(errors) ? errors : errors ? [errors] : [];
  return list.length > 0 ? list.every(isDuplicateKey) : isDuplicateKey(err);
};

/**
 * Inserts many documents, ignoring those already there (same `_id`): the idempotent bulk write
 * of settlement. Calls `progress` after each batch (activities heartbeat there).
 */
export async function insertAllOnce<T extends { _id: string }>(collection: Collection<T>, docs: T[], progress: () => void = () => {}, batch = 1_000): Promise<void> {
  for (let i = 0; i < docs.length; i += batch) {
    try {
      await collection.insertMany(docs.slice(i, i + batch) as never, { ordered: false });
    } catch (err) {
      if (!onlyDuplicates(err)) throw err;
    }
    progress();
  }
}

/**
 * Assigns to `epoch` every accrued accrual created in [fromMs, beforeMs) that no epoch has yet:
 * one unique insert per accrual in `epoch_entries`, so a request is assigned to one epoch only,
 * whatever retries or overlapping ranges do. Idempotent: a retry inserts nothing new but any
 * accrual that appeared in the range meanwhile. `fromMs` undefined: everything before `beforeMs`.
 * @returns how many accruals the range held
 */
export async function assignAccrualsToEpoch(db: Db, epoch: number, range: { fromMs?: number | undefined; beforeMs: number }, progress: () => void = () => {}): Promise<number> {
  const createdAt = { ...(range.fromMs !== undefined ? { $gte: new Date(range.fromMs) } : {}), $lt: new Date(range.beforeMs) };
  const cursor = store(db).ledger.find({ status: 'accrued', createdAt }, { projection: { _id: 1, operator: 1, amount: 1 } }).batchSize(5_000);
  const entries = store(db).epochEntries;
  let batch: EpochEntry[] = [];
  let seen = 0;
  for await (const doc of cursor) {
    batch.push({ _id: doc._id, epoch, operator: doc.operator, amount: doc.amount });
    seen++;
    if (batch.length >= 5_000) {
      await insertAllOnce(entries, batch, progress);
      batch = [];
    }
  }
  await insertAllOnce(entries, batch, progress);
  return seen;
}

/** Of `requestIds`, those that have a void record. */
export async function voidedAmong(db: Db, requestIds: string[]): Promise<Set<string>> {
  if (requestIds.length === 0) return new Set();
  const found = await store(db).ledgerVoids
    .find({ _id: { $in: requestIds } }, { projection: { _id: 1 } })
    .toArray();
  return new Set(found.map((v) => v._id));
}
