/**
 * Free API keys: anyone can get one; each key has a per-minute request limit and a daily token
 * quota, both enforced before any work starts and shared by every gateway process through
 * MongoDB. Only the sha256 of a key is stored; the plaintext is shown once, at issue.
 *
 * Why the counters are insert-only: FerretDB 1.x (the local MongoDB-wire server) implements
 * every update, `findAndModify` included, as read, modify in Go, write back by `_id`, with no
 * check that the document is unchanged in between. Concurrent `$inc`s lose updates, and a
 * conditional `$inc` (`{ used: { $lte: quota - n } }`) lets every concurrent caller through.
 * The one write it makes atomic is an insert against a unique key (SQLite's own primary-key
 * constraint). So both limits claim numbered slots with `insertOne` on a deterministic `_id`:
 * a duplicate-key error means another process took that slot first. This is equally atomic on
 * MongoDB, so one code path serves both.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import { isDuplicateKey } from '../../connections/mongo.ts';
import { BaseError } from '../../domain/errors.ts';
import { ensureIndexes, store, type ApiKeyDoc, type KeyPolicy, type RequestSlotDoc, type SettlementDoc, type TokenEntryDoc } from '../../store/index.ts';

export type { KeyPolicy };

/** The limits of a free key. */
export const defaultKeyPolicy: Readonly<KeyPolicy> = Object.freeze({ requestsPerMinute: 60, tokensPerDay: 200_000 });

/** Longest label, in characters (code points). */
export const maxLabelLength = 64;

/** `gb-` then 32 random bytes in unpadded base64url (43 characters). */
export const apiKeyPattern = /^gb-[A-Za-z0-9_-]{43}$/;

/** What the gateway learns about an authenticated key. Never holds the key or its hash. */
export interface KeyRecord {
  id: string;
  label?: string;
  policy: KeyPolicy;
  createdAt: Date;
}

/** A freshly issued key: `key` is the only copy of the plaintext there will ever be. */
export interface IssuedKey {
  key: string;
  id: string;
  createdAt: Date;
}

/** The answer of `checkRate`: admitted, or refused until the next one-minute window. */
export type RateCheck = { ok: true } | { ok: false; retryAfterSeconds: number };

/** The answer of `reserveTokens`: reserved with what is left, or refused (nothing reserved) with what is left and when the quota resets. */
export type TokenReservation =
  /** `day` is the UTC day charged; pass it to `settleTokens` so a request that spans midnight settles on the day it reserved. */
  | { ok: true; remaining: number; day: string }
  | { ok: false; remaining: number; resetAt: Date };

/**
 * A reservation made for one request: what the ledger entry records so that whoever settles it
 * (the gateway that made it, or the reconciler when that gateway died) can, exactly once.
 */
export interface RequestReservation {
  keyId: string;
  requestId: string;
  /** Tokens reserved. */
  reserved: number;
  /** The UTC day charged. */
  day: string;
  /** The prompt estimate: what a request cut off with nothing else known is charged. */
  promptTokens: number;
  /** When it was reserved. */
  at: Date;
}

/** A key's consumption right now. */
export interface KeyUsage {
  /** The UTC day, `YYYY-MM-DD`. */
  day: string;
  tokensPerDay: number;
  /** Tokens reserved or spent today; may exceed the quota when a request used more than it reserved. */
  usedTokens: number;
  remainingTokens: number;
  resetAt: Date;
  requestsPerMinute: number;
  /** Requests admitted in this one-minute window (refused ones are not counted). */
  requests: number;
}

/** Stable error codes, for clients to branch on. */
export type ApiKeyErrorCode = 'KEY_INVALID' | 'KEY_LABEL_INVALID' | 'KEY_RATE_LIMITED' | 'KEY_QUOTA_EXCEEDED';

/** A refused key or request; `code` is stable for clients, and gateway/errors.ts says what it answers. */
export class ApiKeyError extends BaseError<ApiKeyErrorCode> {
  override readonly name = 'ApiKeyError';

  constructor(
    code: ApiKeyErrorCode,
    message: string,
    /** For 429s: the `Retry-After` the gateway should send. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message, { code });
  }

  /** A missing, malformed, unknown or disabled key; deliberately one message for all, so probing learns nothing. */
  static invalid(): ApiKeyError {
    return new ApiKeyError('KEY_INVALID', 'invalid API key');
  }
}


const minuteMs = 60_000;
const dayMs = 86_400_000;
// A token ledger outlives its day by this much, so a request that started before midnight can
// still settle on the day it reserved, and yesterday's usage stays visible for a while.
const tokenLedgerRetentionMs = dayMs;
// Bounds the in-process caches. Policies are immutable once issued, and the other caches are
// only hints (see `checkRate`, `appendTokens`), so an evicted entry costs a read, never correctness.
const cacheSize = 10_000;
// Each lost race means another writer appended, so this many in a row means something is wrong
// (or a key is being hammered far beyond its rate limit); fail loudly instead of spinning.
const maxLedgerAttempts = 200;

/** A Map that forgets its oldest entry when full. */
class BoundedMap<K, V> extends Map<K, V> {
  override set(key: K, value: V): this {
    if (!this.has(key) && this.size >= cacheSize) {
      const oldest = this.keys().next();
      if (!oldest.done) this.delete(oldest.value);
    }
    return super.set(key, value);
  }
}


function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function nextUtcMidnight(ms: number): Date {
  return new Date((Math.floor(ms / dayMs) + 1) * dayMs);
}

function assertPolicy(policy: KeyPolicy): void {
  for (const [name, value] of Object.entries(policy)) {
    if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`KeyPolicy.${name} must be a positive integer, got ${String(value)}`);
  }
}

function assertTokens(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative integer, got ${String(value)}`);
}

/** Trims, then refuses empty, over-long or control-character labels, which would garble logs and listings. */
function validLabel(label: string): string {
  const trimmed = typeof label === 'string' ? label.trim() : '';
  if (trimmed === '' || [...trimmed].length > maxLabelLength || /\p{Cc}/u.test(trimmed)) {
    throw new ApiKeyError('KEY_LABEL_INVALID', `label must be 1 to ${maxLabelLength} characters without control characters`);
  }
  return trimmed;
}

/** Issues, authenticates and meters API keys. One instance per gateway process; any number of processes may share the database. */
export class ApiKeys {
  private readonly keys: Collection<ApiKeyDoc>;
  private readonly requests: Collection<RequestSlotDoc>;
  private readonly tokens: Collection<TokenEntryDoc>;
  private readonly settlements: Collection<SettlementDoc>;
  private readonly policies = new BoundedMap<string, KeyPolicy>();
  /** `<keyId>:<window>` → the highest request slot this process knows is taken. */
  private readonly takenSlots = new BoundedMap<string, number>();
  /** `<keyId>:<day>` → the last ledger entry this process read or wrote. */
  private readonly ledgerTails = new BoundedMap<string, { seq: number; used: number }>();
  private readonly policy: KeyPolicy;

  /**
   * @param policy the limits given to keys issued from now on
   * @param now the clock, in ms since the epoch; injected so tests can cross minute and day boundaries
   */
  constructor(
    private readonly db: Db,
    policy: KeyPolicy = defaultKeyPolicy,
    private readonly now: () => number = Date.now,
  ) {
    assertPolicy(policy);
    this.policy = { requestsPerMinute: policy.requestsPerMinute, tokensPerDay: policy.tokensPerDay };
    this.keys = store(db).apiKeys;
    this.requests = store(db).apiKeyRequests;
    this.tokens = store(db).apiKeyTokens;
    this.settlements = store(db).apiKeySettlements;
  }

  /** Creates the indexes; call once at gateway start. Idempotent. */
  async ensureIndexes(): Promise<void> {
    await ensureIndexes(this.db, ['apiKeys', 'apiKeyRequests', 'apiKeyTokens', 'apiKeySettlements']);
  }

  /**
   * Issues a key under the current policy. The returned `key` is the only copy of the plaintext;
   * only its sha256 is stored. Throws `ApiKeyError` `KEY_LABEL_INVALID` for a bad label.
   */
  async issue(label?: string): Promise<IssuedKey> {
    const cleanLabel = label === undefined ? undefined : validLabel(label);
    const key = `gb-${randomBytes(32).toString('base64url')}`;
    const hash = sha256Hex(key);
    const createdAt = new Date(this.now());
    const policy = { ...this.policy };
    for (;;) {
      const id = `key_${randomBytes(8).toString('hex')}`;
      const doc: ApiKeyDoc = { _id: id, hash, ...(cleanLabel === undefined ? {} : { label: cleanLabel }), policy, createdAt, disabled: false };
      try {
        await this.keys.insertOne(doc);
      } catch (err) {
        // 64 random bits: an id collision is all but impossible, but costs nothing to survive.
        // The hash cannot collide, so a duplicate can only be the id.
        if (isDuplicateKey(err)) continue;
        throw err;
      }
      this.policies.set(id, policy);
      return { key, id, createdAt };
    }
  }

  /**
   * The key's record, or undefined for a malformed, unknown or disabled key. The format check
   * comes first, so garbage costs no database round trip; the lookup is by sha256, so no
   * plaintext is ever compared (nothing to time) and the database never sees a key.
   */
  async authenticate(key: string): Promise<KeyRecord | undefined> {
    if (typeof key !== 'string' || !apiKeyPattern.test(key)) return undefined;
    const doc = await this.keys.findOne({ hash: sha256Hex(key) });
    if (!doc || doc.disabled) return undefined;
    this.policies.set(doc._id, doc.policy);
    return { id: doc._id, ...(doc.label === undefined ? {} : { label: doc.label }), policy: doc.policy, createdAt: doc.createdAt };
  }

  /** Disables a key for good: `authenticate` refuses it from the next request on. False when no such key. */
  async disable(id: string): Promise<boolean> {
    const { matchedCount } = await this.keys.updateOne({ _id: id }, { $set: { disabled: true } });
    return matchedCount === 1;
  }

  /**
   * Counts one request against the key's fixed one-minute window, or refuses it. Refused
   * requests are not counted. Exact across processes: each admitted request claims a distinct
   * slot 1..limit by inserting it, so at most `requestsPerMinute` inserts can ever succeed.
   */
  async checkRate(id: string): Promise<RateCheck> {
    const { requestsPerMinute: limit } = await this.policyOf(id);
    const now = this.now();
    const window = Math.floor(now / minuteMs);
    const windowEnd = (window + 1) * minuteMs;
    const refusal = { ok: false as const, retryAfterSeconds: Math.max(1, Math.ceil((windowEnd - now) / 1000)) };
    const hint = `${id}:${window}`;
    const known = this.takenSlots.get(hint);
    // Slots are never given back within a window, so once this process saw the last one taken,
    // the window is full: refuse without a round trip.
    if (known !== undefined && known >= limit) return refusal;
    // Start at the first free slot as far as we know (one count when we know nothing); a lost
    // race just moves one slot up.
    let slot = known !== undefined ? known + 1 : (await this.requests.countDocuments({ keyId: id, window })) + 1;
    for (; slot <= limit; slot++) {
      try {
        await this.requests.insertOne({ _id: `${hint}:${slot}`, keyId: id, window, slot, expiresAt: new Date(windowEnd + minuteMs) });
        this.takenSlots.set(hint, slot);
        return { ok: true };
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
      }
    }
    this.takenSlots.set(hint, limit);
    return refusal;
  }

  /**
   * Reserves `tokens` (the request's most: prompt estimate + max_tokens) from today's quota
   * before any work starts, or refuses without reserving anything. Concurrent reservations
   * never overbook: see `appendTokens`.
   */
  async reserveTokens(id: string, tokens: number, request?: { requestId: string; promptTokens: number }): Promise<TokenReservation> {
    assertTokens('tokens', tokens);
    const { tokensPerDay: quota } = await this.policyOf(id);
    const now = this.now();
    const day = utcDay(now);
    // A request's reservation carries its id in the same insert, so there is never a charge
    // that nothing can find and settle (see `unsettledReservations`).
    const ref = request ? { ref: request.requestId, kind: 'reserve' as const, reserved: tokens, promptTokens: request.promptTokens, at: new Date(now) } : {};
    const used = await this.appendTokens(id, day, (current) => (current + tokens <= quota ? current + tokens : undefined), ref);
    if (used.appended) return { ok: true, remaining: Math.max(0, quota - used.total), day };
    return { ok: false, remaining: Math.max(0, quota - used.total), resetAt: nextUtcMidnight(now) };
  }

  /**
   * Settles a reservation once the request is done: gives back `reserved - actual`, never taking
   * the day's total below zero. Should a request have used more than it reserved, the overrun is
   * charged too (free, yes; unmetered, no). `day` is the one `reserveTokens` returned; it
   * defaults to today. Returns what is left of that day's quota.
   */
  async settleTokens(id: string, reserved: number, actual: number, day: string = utcDay(this.now())): Promise<{ remaining: number }> {
    assertTokens('reserved', reserved);
    assertTokens('actual', actual);
    const { tokensPerDay: quota } = await this.policyOf(id);
    const delta = actual - reserved;
    const result =
      delta === 0 ? await this.tokenTotal(id, day) : (await this.appendTokens(id, day, (current) => Math.max(0, current + delta))).total;
    return { remaining: Math.max(0, quota - result) };
  }

  /**
   * Settles one request's reservation, exactly once whoever calls and however often: the first
   * caller claims it by inserting its settlement (`_id` = request id), then appends the ledger
   * entry; every later caller finds the claim and changes nothing. Returns false for those.
   *
   * @example
   * await keys.settleReservation({ keyId, requestId, reserved, day }, usage.totalTokens);
   */
  async settleReservation(reservation: Pick<RequestReservation, 'keyId' | 'requestId' | 'reserved' | 'day'>, actual: number): Promise<boolean> {
    const { keyId, requestId, reserved, day } = reservation;
    assertTokens('reserved', reserved);
    assertTokens('actual', actual);
    try {
      await this.settlements.insertOne({ _id: requestId, keyId, day, reserved, actual, claimedAt: new Date(this.now()), applied: false });
    } catch (err) {
      if (isDuplicateKey(err)) return false;
      throw err;
    }
    await this.applySettlement({ _id: requestId, keyId, day, reserved, actual });
    return true;
  }

  /**
   * Request reservations made before `before` and not yet settled (oldest first, at most
   * `limit`): what the reconciler looks at. One whose settlement was claimed but never applied
   * (the settler died in between) and whose claim is older than `before` is finished here.
   */
  async unsettledReservations(before: Date, limit = 500): Promise<RequestReservation[]> {
    const entries = await this.tokens
      .find({ kind: 'reserve', settled: { $ne: true }, at: { $lt: before } }, { sort: { at: 1 }, limit })
      .toArray();
    if (!entries.length) return [];
    const claims = new Map((await this.settlements.find({ _id: { $in: entries.map((e) => e.ref!) } }).toArray()).map((c) => [c._id, c]));
    const open: RequestReservation[] = [];
    for (const entry of entries) {
      const claim = claims.get(entry.ref!);
      if (!claim) {
        open.push({ keyId: entry.keyId, requestId: entry.ref!, reserved: entry.reserved ?? entry.delta, day: entry.day, promptTokens: entry.promptTokens ?? 0, at: entry.at! });
      } else if (!claim.applied && claim.claimedAt < before) {
        await this.applySettlement(claim);
      } else if (claim.applied) {
        await this.tokens.updateMany({ ref: claim._id, kind: 'reserve' }, { $set: { settled: true } });
      }
    }
    return open;
  }

  /**
   * Appends a claimed settlement's ledger entry unless it is already there (a settler that died
   * after the append but before marking the claim applied), then marks it applied.
   */
  private async applySettlement(claim: Pick<SettlementDoc, '_id' | 'keyId' | 'day' | 'reserved' | 'actual'>): Promise<void> {
    const delta = claim.actual - claim.reserved;
    const done = delta === 0 || (await this.tokens.findOne({ ref: claim._id, kind: 'settle' }, { projection: { _id: 1 } })) !== null;
    if (!done) await this.appendTokens(claim.keyId, claim.day, (current) => Math.max(0, current + delta), { ref: claim._id, kind: 'settle' });
    await this.settlements.updateOne({ _id: claim._id }, { $set: { applied: true } });
    await this.tokens.updateMany({ ref: claim._id, kind: 'reserve' }, { $set: { settled: true } });
  }

  /** Today's tokens and this minute's requests for the key. */
  async usage(id: string): Promise<KeyUsage> {
    const policy = await this.policyOf(id);
    const now = this.now();
    const day = utcDay(now);
    const [usedTokens, requests] = await Promise.all([
      this.tokenTotal(id, day),
      this.requests.countDocuments({ keyId: id, window: Math.floor(now / minuteMs) }),
    ]);
    return {
      day,
      tokensPerDay: policy.tokensPerDay,
      usedTokens,
      remainingTokens: Math.max(0, policy.tokensPerDay - usedTokens),
      resetAt: nextUtcMidnight(now),
      requestsPerMinute: policy.requestsPerMinute,
      requests,
    };
  }

  /**
   * Deletes request windows and token ledgers past their retention. MongoDB's TTL index does
   * this by itself; FerretDB 1.x has no TTL, so run this periodically there. Returns how many
   * documents went.
   */
  async prune(now: Date = new Date(this.now())): Promise<number> {
    const [requests, tokens] = await Promise.all([
      this.requests.deleteMany({ expiresAt: { $lte: now } }),
      this.tokens.deleteMany({ expiresAt: { $lte: now } }),
    ]);
    // A settlement claim matters only while its reservation's ledger exists.
    const settlements = await this.settlements.deleteMany({ claimedAt: { $lte: new Date(now.getTime() - 2 * dayMs - tokenLedgerRetentionMs) } });
    return requests.deletedCount + tokens.deletedCount + settlements.deletedCount;
  }

  private async policyOf(id: string): Promise<KeyPolicy> {
    const cached = this.policies.get(id);
    if (cached) return cached;
    const doc = await this.keys.findOne({ _id: id }, { projection: { policy: 1 } });
    if (!doc) throw ApiKeyError.invalid();
    this.policies.set(id, doc.policy);
    return doc.policy;
  }

  /** The day's last ledger entry, or the empty state before the day's first. */
  private async lastEntry(id: string, day: string): Promise<{ seq: number; used: number }> {
    const doc = await this.tokens.findOne({ keyId: id, day }, { sort: { seq: -1 }, projection: { seq: 1, used: 1 } });
    const last = doc ? { seq: doc.seq, used: doc.used } : { seq: 0, used: 0 };
    this.ledgerTails.set(`${id}:${day}`, last);
    return last;
  }

  private async tokenTotal(id: string, day: string): Promise<number> {
    return (await this.lastEntry(id, day)).used;
  }

  /**
   * Appends the next entry to the key's day ledger: reads the last entry `seq`, computes the
   * new total, and inserts entry `seq + 1` with a deterministic `_id`. Exactly one writer can
   * insert it; the others get a duplicate key, reread, and decide again on the new total. That
   * makes each entry a compare-and-swap on the one before, so the totals form a single chain and
   * no reservation is decided on a stale total. `next` returns undefined to refuse.
   *
   * The last entry this process saw is tried first without rereading it: if entry `seq + 1`
   * inserts, entry `seq` was still the last, and entries never change, so the decision stood on
   * the true total. That makes the usual append one insert by `_id`. A refusal, though, is only
   * ever made on a fresh read, since a refund by another process may have made room since.
   */
  private async appendTokens(
    id: string,
    day: string,
    next: (current: number) => number | undefined,
    extra: Pick<TokenEntryDoc, 'ref' | 'kind' | 'reserved' | 'promptTokens' | 'at'> = {},
  ): Promise<{ appended: boolean; total: number }> {
    // The ledger lives a day past its own, measured from the day rather than from `now`, so
    // a late settlement cannot keep an old day alive.
    const expiresAt = new Date(Date.parse(`${day}T00:00:00Z`) + dayMs + tokenLedgerRetentionMs);
    const tail = `${id}:${day}`;
    const cached = this.ledgerTails.get(tail);
    let last = cached ?? (await this.lastEntry(id, day));
    let fresh = cached === undefined;
    for (let attempt = 0; attempt < maxLedgerAttempts; attempt++) {
      const total = next(last.used);
      if (total === undefined) {
        if (fresh) return { appended: false, total: last.used };
      } else {
        const seq = last.seq + 1;
        try {
          await this.tokens.insertOne({ _id: `${tail}:${seq}`, keyId: id, day, seq, used: total, delta: total - last.used, expiresAt, ...extra });
          this.ledgerTails.set(tail, { seq, used: total });
          return { appended: true, total };
        } catch (err) {
          if (!isDuplicateKey(err)) throw err;
        }
      }
      last = await this.lastEntry(id, day);
      fresh = true;
    }
    throw new Error(`token ledger of key ${id} for ${day}: lost ${maxLedgerAttempts} appends in a row to concurrent writers`);
  }
}
