/**
 * Every collection GitBlock stores, with its document type and indexes: the one place a
 * collection's name is spelled. Reach a collection with `store(db).<name>`; create every index
 * with `ensureIndexes(db)` (idempotent; the gateway, the edge and the control worker call it at
 * start, settlement before each close).
 *
 * @example
 * const doc = await store(db).nodes.findOne({ _id: nodeId });
 */
import type { Collection, Db } from 'mongodb';
import { createIndexes, type DocumentOf, type StoredCollection } from './collection.ts';
import { apiKeyRequests, apiKeys, apiKeySettlements, apiKeyTokens } from './keys.ts';
import { epochEntries, ledger, ledgerVoids } from './ledger.ts';
import { nodeHistory, nodes } from './nodes.ts';
import { registrationNonces, registrations } from './registrations.ts';
import { requests } from './requests.ts';
import { epochLinks, epochs, rewardProofs } from './settlement.ts';
import { smoke } from './smoke.ts';

export const collections = {
  nodes,
  nodeHistory,
  registrations,
  registrationNonces,
  requests,
  ledger,
  ledgerVoids,
  epochEntries,
  epochs,
  epochLinks,
  rewardProofs,
  apiKeys,
  apiKeyRequests,
  apiKeyTokens,
  apiKeySettlements,
  smoke,
} as const;

export type Store = { readonly [K in keyof typeof collections]: Collection<DocumentOf<(typeof collections)[K]>> };

const opened = new WeakMap<Db, Store>();

/** The database's collections, typed; one object per database handle. */
export function store(db: Db): Store {
  let s = opened.get(db);
  if (!s) {
    s = Object.fromEntries(Object.entries(collections).map(([key, c]) => [key, db.collection(c.name)])) as unknown as Store;
    opened.set(db, s);
  }
  return s;
}

/** Creates every collection's indexes (or only `which`). Idempotent. */
export async function ensureIndexes(db: Db, which: readonly (keyof typeof collections)[] = Object.keys(collections) as (keyof typeof collections)[]): Promise<void> {
  for (const key of which) {
    const definition: StoredCollection<object> = collections[key];
    if (definition.indexes.length > 0) await createIndexes(store(db)[key] as unknown as Collection, definition.indexes);
  }
}

export type { NodeCheck, NodeDocument, NodeHistoryDay, NodeHistoryPoint } from './nodes.ts';
export { dayMs, nodeHistoryBucketMs, nodeHistoryDayId } from './nodes.ts';
export type { NonceDoc, RegistrationDoc } from './registrations.ts';
export type { RequestDocument, RequestStatus } from './requests.ts';
export type { EpochEntry, LedgerDoc, LedgerEntry, VoidRecord } from './ledger.ts';
export type { EpochDoc, LinkDoc, ProofDoc } from './settlement.ts';
export type { ApiKeyDoc, KeyPolicy, RequestSlotDoc, SettlementDoc, TokenEntryDoc } from './keys.ts';
