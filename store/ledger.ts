/**
 * The reward ledger: one accrual per served request (`ledger`), its void if a spot check failed
 * (`ledger_voids`), and its assignment to the epoch that pays it (`epoch_entries`). See
 * activities/ledger.ts for why voids and assignments are unique inserts, never updates.
 */
import { storedCollection } from './collection.ts';

export interface LedgerEntry {
  _id: string; // the request id: one accrual per request, enforced by the primary key
  nodeId: string;
  operator: string;
  modelId: string;
  completionTokens: number;
  /** GBT base units, as a decimal string (bigint). */
  amount: string;
  status: 'accrued' | 'voided';
  voidReason?: string;
  createdAt: Date;
}

/** A ledger document as settlement sees it. */
export interface LedgerDoc extends LedgerEntry {
  voidedAt?: Date;
  /** Voided after its epoch was computed: it was paid (the void came too late to stop it). */
  voidedAfterPayout?: boolean;
}

/** One void per request id, inserted before the ledger document is touched: the atomic record. */
export interface VoidRecord {
  _id: string;
  reason: string;
  at: Date;
}

/** An accrual assigned to the epoch that pays it: written once, at the epoch's close. */
export interface EpochEntry {
  _id: string; // the request id: one epoch per accrual, enforced by the primary key
  epoch: number;
  operator: string;
  /** GBT base units, as accrued (decimal string). */
  amount: string;
}

export const ledger = storedCollection<LedgerDoc>('ledger', [{ key: { operator: 1 } }, { key: { createdAt: 1 } }]);

export const ledgerVoids = storedCollection<VoidRecord>('ledger_voids');

export const epochEntries = storedCollection<EpochEntry>('epoch_entries', [{ key: { epoch: 1 } }, { key: { operator: 1 } }]);
