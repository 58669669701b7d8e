/**
 * API keys (gateway/keys/keys.ts): the keys (only each key's sha256), each admitted request's slot
 * in its key's one-minute window, the daily token ledger, and one settlement per reservation.
 * Uniqueness lives in `_id`, which every MongoDB-wire server enforces; the other indexes serve
 * lookups, and the TTL indexes forget what has expired (on FerretDB 1.x, which lacks TTL
 * indexes, `prune` does it).
 */
import { storedCollection } from './collection.ts';

/** A key's limits. Snapshotted into the key at issue, so changing the defaults later never changes a key already out there. */
export interface KeyPolicy {
  /** Requests admitted per fixed one-minute window (UTC minute boundaries). */
  requestsPerMinute: number;
  /** Tokens (prompt + completion) per UTC day. */
  tokensPerDay: number;
}

export interface ApiKeyDoc {
  /** The key's id: short, random, safe to log and show. */
  _id: string;
  /** sha256 of the whole key (`gb-...`), lowercase hex. */
  hash: string;
  label?: string;
  policy: KeyPolicy;
  createdAt: Date;
  disabled: boolean;
}

export interface RequestSlotDoc {
  /** `<keyId>:<window>:<slot>`; the insert that creates it is the claim. */
  _id: string;
  keyId: string;
  /** Minutes since the epoch. */
  window: number;
  /** 1..requestsPerMinute. */
  slot: number;
  /** When the window may be forgotten. */
  expiresAt: Date;
}

export interface TokenEntryDoc {
  /** `<keyId>:<day>:<seq>`; only one writer can append entry `seq`. */
  _id: string;
  keyId: string;
  /** UTC day, `YYYY-MM-DD`. */
  day: string;
  /** 1, 2, 3... within the key's day; the highest is the current state. */
  seq: number;
  /** Running total of the day's tokens after this entry. */
  used: number;
  /** This entry's change as applied: + for a reservation or overrun, - for a refund (clamped at a total of zero). */
  delta: number;
  expiresAt: Date;
  /** For a request's reservation or settlement: the request id, and which of the two. */
  ref?: string;
  kind?: 'reserve' | 'settle';
  /** On a request's reservation: the reserved amount, the prompt estimate and when. */
  reserved?: number;
  promptTokens?: number;
  at?: Date;
  /**
   * Set on a request's reservation once it is settled. Only a hint that keeps the reconciler's
   * scan short (FerretDB cannot update it atomically); the settlement claim is the truth.
   */
  settled?: boolean;
}

export interface SettlementDoc {
  /** The request id: one settlement per reservation, by the primary key. */
  _id: string;
  keyId: string;
  day: string;
  reserved: number;
  actual: number;
  claimedAt: Date;
  /** False between the claim and the ledger entry: a claim left so is finished by the reconciler. */
  applied: boolean;
}

const ttl = { expireAfterSeconds: 0, name: 'expires_at_ttl' };

// Authentication looks keys up by hash; unique, so one hash can never name two keys.
export const apiKeys = storedCollection<ApiKeyDoc>('api_keys', [{ key: { hash: 1 }, options: { unique: true, name: 'hash_unique' } }]);

// Counting a window's slots.
export const apiKeyRequests = storedCollection<RequestSlotDoc>('api_key_requests', [
  { key: { keyId: 1, window: 1 }, options: { name: 'key_window' } },
  { key: { expiresAt: 1 }, options: ttl },
]);

export const apiKeyTokens = storedCollection<TokenEntryDoc>('api_key_tokens', [
  // Finding a day's last ledger entry.
  { key: { keyId: 1, day: 1, seq: -1 }, options: { name: 'key_day_seq' } },
  // The reconciler's scan for request reservations not yet settled, and lookups by request.
  { key: { kind: 1, settled: 1, at: 1 }, options: { name: 'kind_settled_at' } },
  { key: { ref: 1 }, options: { name: 'ref' } },
  { key: { expiresAt: 1 }, options: ttl },
]);

export const apiKeySettlements = storedCollection<SettlementDoc>('api_key_settlements');
