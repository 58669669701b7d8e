/**
 * API keys on the real MongoDB-wire server of the test stack (FerretDB unless MONGODB_URI says
 * otherwise), with an injected clock to cross minute and UTC-day boundaries on demand.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { connectMongo, type MongoHandle } from '../../connections/mongo.ts';
import { unique } from '../../test/helpers.ts';
import { toApiError } from '../errors.ts';
import { ApiKeyError, ApiKeys, apiKeyPattern, defaultKeyPolicy, type KeyPolicy } from './keys.ts';
import { store } from '../../store/index.ts';

let mongo: MongoHandle;

beforeAll(async () => {
  mongo = await connectMongo(inject('stack').mongodbUri, unique('keys'));
  await new ApiKeys(mongo.db).ensureIndexes();
});
afterAll(async () => {
  await mongo.db.dropDatabase();
  await mongo[Symbol.asyncDispose]();
});

/** 2026-11-25 12:00:30.000 UTC: mid-minute, mid-day. */
const start = Date.UTC(2026, 10, 25, 12, 0, 30);

/** An `ApiKeys` on a clock the test moves, with one freshly issued key. */
async function setup(policy: KeyPolicy = defaultKeyPolicy) {
  const clock = { t: start };
  const keys = new ApiKeys(mongo.db, policy, () => clock.t);
  const issued = await keys.issue('test');
  return { clock, keys, ...issued };
}

async function rejection(promise: Promise<unknown>): Promise<ApiKeyError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApiKeyError);
  return err as ApiKeyError;
}

describe('issuing and authenticating', () => {
  it('round-trips: the issued key authenticates to its record', async () => {
    const { keys, key, id, createdAt } = await setup();
    expect(key).toMatch(apiKeyPattern);
    expect(createdAt).toEqual(new Date(start));
    expect(await keys.authenticate(key)).toEqual({ id, label: 'test', policy: defaultKeyPolicy, createdAt });

    const unlabelled = await keys.issue();
    const record = await keys.authenticate(unlabelled.key);
    expect(record).toEqual({ id: unlabelled.id, policy: defaultKeyPolicy, createdAt });
    expect(record).not.toHaveProperty('label');
    expect(unlabelled.key).not.toBe(key);
  });

  it('stores only the sha256 of the key, never the plaintext', async () => {
    const { key, id } = await setup();
    const stored = await store(mongo.db).apiKeys.findOne({ _id: id });
    expect(stored).toEqual({
      _id: id,
      hash: createHash('sha256').update(key).digest('hex'),
      label: 'test',
      policy: defaultKeyPolicy,
      createdAt: new Date(start),
      disabled: false,
    });
    // Not the key, nor its random part, anywhere in the database.
    const secret = key.slice(3);
    for (const { name } of await mongo.db.listCollections().toArray()) {
      const dump = JSON.stringify(await mongo.db.collection(name).find().toArray());
      expect(dump).not.toContain(secret);
    }
  });

  it('refuses unknown, garbled and disabled keys', async () => {
    const { keys, key, id } = await setup();
    const unknown = `gb-${'A'.repeat(43)}`;
    const flipped = key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A');
    for (const bad of [unknown, flipped, '', 'gb-', key.slice(0, -1), `${key}A`, ` ${key}`, `Bearer ${key}`, key.replace('gb-', 'sk-'), key.replace(/.$/, '+')]) {
      expect(await keys.authenticate(bad), bad).toBeUndefined();
    }
    expect(await keys.authenticate(undefined as unknown as string)).toBeUndefined();

    expect(await keys.authenticate(key)).toBeDefined();
    expect(await keys.disable(id)).toBe(true);
    expect(await keys.authenticate(key)).toBeUndefined();
    expect(await keys.disable('key_nosuchkey')).toBe(false);
  });

  it('validates labels: at most 64 characters, no control characters', async () => {
    const keys = new ApiKeys(mongo.db);
    const longest = 'é'.repeat(64);
    expect((await keys.authenticate((await keys.issue(longest)).key))?.label).toBe(longest);
    expect((await keys.authenticate((await keys.issue('  my app  ')).key))?.label).toBe('my app');
    for (const bad of ['x'.repeat(65), '', '   ', 'tab\there', 'new\nline']) {
      const err = await rejection(keys.issue(bad));
      expect([err.code, toApiError(err).status, toApiError(err).param]).toEqual(['KEY_LABEL_INVALID', 400, 'label']);
    }
  });
});

describe('the per-minute rate limit', () => {
  it('admits exactly the limit in a window, then refuses with the time to the next window, which admits again', async () => {
    const { keys, id, clock } = await setup({ requestsPerMinute: 5, tokensPerDay: 1000 });
    for (let i = 0; i < 5; i++) expect(await keys.checkRate(id)).toEqual({ ok: true });
    expect(await keys.checkRate(id)).toEqual({ ok: false, retryAfterSeconds: 30 });
    clock.t = start + 17_500; // 12:00:47.5
    expect(await keys.checkRate(id)).toEqual({ ok: false, retryAfterSeconds: 13 });
    expect((await keys.usage(id)).requests).toBe(5); // refusals are not counted

    clock.t = Date.UTC(2026, 10, 25, 12, 0, 59, 999);
    expect((await keys.checkRate(id)).ok).toBe(false);
    clock.t = Date.UTC(2026, 10, 25, 12, 1, 0); // the next window
    for (let i = 0; i < 5; i++) expect(await keys.checkRate(id)).toEqual({ ok: true });
    expect(await keys.checkRate(id)).toEqual({ ok: false, retryAfterSeconds: 60 });
  });

  it('keys are limited independently', async () => {
    const { keys, id } = await setup({ requestsPerMinute: 1, tokensPerDay: 1000 });
    const other = await keys.issue();
    expect((await keys.checkRate(id)).ok).toBe(true);
    expect((await keys.checkRate(id)).ok).toBe(false);
    expect((await keys.checkRate(other.id)).ok).toBe(true);
  });

  it('is exact under concurrency: 20 simultaneous requests against a limit of 10 admit exactly 10', async () => {
    const { keys, id } = await setup({ requestsPerMinute: 10, tokensPerDay: 1000 });
    const results = await Promise.all(Array.from({ length: 20 }, () => keys.checkRate(id)));
    expect(results.filter((r) => r.ok)).toHaveLength(10);
    expect((await keys.usage(id)).requests).toBe(10);
  });

  it('is shared by separate gateway instances on the same database', async () => {
    const { keys, id, clock } = await setup({ requestsPerMinute: 4, tokensPerDay: 1000 });
    const another = new ApiKeys(mongo.db, defaultKeyPolicy, () => clock.t);
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? keys : another).checkRate(id)));
    expect(results.filter((r) => r.ok)).toHaveLength(4);
  });

  it("stays exact when one instance's view of the window is stale", async () => {
    const { keys: a, id, clock } = await setup({ requestsPerMinute: 3, tokensPerDay: 1000 });
    const b = new ApiKeys(mongo.db, defaultKeyPolicy, () => clock.t);
    expect((await a.checkRate(id)).ok).toBe(true); // a knows slot 1 is taken
    expect((await b.checkRate(id)).ok).toBe(true);
    expect((await b.checkRate(id)).ok).toBe(true); // b took slots 2 and 3, behind a's back
    expect((await a.checkRate(id)).ok).toBe(false);
    expect((await b.checkRate(id)).ok).toBe(false);
    expect((await a.usage(id)).requests).toBe(3);
  });

  it('tells a refused request when the window frees up', async () => {
    const { keys, id, clock } = await setup({ requestsPerMinute: 60, tokensPerDay: 200_000 });
    for (let i = 0; i < 60; i++) expect((await keys.checkRate(id)).ok).toBe(true);
    clock.t = Date.UTC(2026, 10, 25, 12, 0, 48);
    expect(await keys.checkRate(id)).toEqual({ ok: false, retryAfterSeconds: 12 });
    // Refused requests are not counted.
    expect((await keys.usage(id)).requests).toBe(60);
  });
});

describe('the daily token quota', () => {
  it('admits reservations up to the quota, refuses beyond it with what is left and when it resets, and settles the unused part back', async () => {
    const { keys, id } = await setup({ requestsPerMinute: 60, tokensPerDay: 1000 });
    expect(await keys.reserveTokens(id, 400)).toEqual({ ok: true, remaining: 600, day: '2026-11-25' });
    expect(await keys.reserveTokens(id, 600)).toEqual({ ok: true, remaining: 0, day: '2026-11-25' });
    const resetAt = new Date('2026-11-26T00:00:00Z');
    expect(await keys.reserveTokens(id, 1)).toEqual({ ok: false, remaining: 0, resetAt });

    // The 600-token request used 250: 350 come back.
    expect(await keys.settleTokens(id, 600, 250, '2026-11-25')).toEqual({ remaining: 350 });
    expect(await keys.reserveTokens(id, 351)).toEqual({ ok: false, remaining: 350, resetAt });
    expect(await keys.reserveTokens(id, 350)).toEqual({ ok: true, remaining: 0, day: '2026-11-25' });
    expect(await keys.usage(id)).toMatchObject({ day: '2026-11-25', tokensPerDay: 1000, usedTokens: 1000, remainingTokens: 0, resetAt });

    // A request bigger than the whole quota is refused outright.
    expect(await keys.reserveTokens(id, 5000)).toEqual({ ok: false, remaining: 0, resetAt });
  });

  it('never settles below zero, and charges an overrun', async () => {
    const { keys, id } = await setup({ requestsPerMinute: 60, tokensPerDay: 1000 });
    expect((await keys.reserveTokens(id, 100)).ok).toBe(true);
    expect(await keys.settleTokens(id, 5000, 0)).toEqual({ remaining: 1000 });
    expect((await keys.usage(id)).usedTokens).toBe(0);

    expect((await keys.reserveTokens(id, 100)).ok).toBe(true);
    expect(await keys.settleTokens(id, 100, 130)).toEqual({ remaining: 870 });
    expect(await keys.settleTokens(id, 10, 10)).toEqual({ remaining: 870 });
  });

  it('never overbooks under concurrency: 20 simultaneous reservations against a quota that fits 10 admit exactly 10', async () => {
    const { keys, id } = await setup({ requestsPerMinute: 60, tokensPerDay: 1000 });
    const results = await Promise.all(Array.from({ length: 20 }, () => keys.reserveTokens(id, 100)));
    const admitted = results.filter((r) => r.ok);
    expect(admitted).toHaveLength(10);
    // Every admitted reservation saw a distinct total: the remaining values are 900, 800, ... 0.
    expect(admitted.map((r) => r.remaining).sort((a, b) => a - b)).toEqual([0, 100, 200, 300, 400, 500, 600, 700, 800, 900]);
    for (const r of results.filter((r) => !r.ok)) expect(r).toEqual({ ok: false, remaining: 0, resetAt: new Date('2026-11-26T00:00:00Z') });
    expect((await keys.usage(id)).usedTokens).toBe(1000);
  });

  it('decides on the true total when another instance wrote since, and confirms a refusal on a fresh read', async () => {
    const { keys: a, id, clock } = await setup({ requestsPerMinute: 60, tokensPerDay: 1000 });
    const b = new ApiKeys(mongo.db, defaultKeyPolicy, () => clock.t);
    const day = '2026-11-25';
    expect(await a.reserveTokens(id, 300)).toEqual({ ok: true, remaining: 700, day });
    expect(await b.reserveTokens(id, 500)).toEqual({ ok: true, remaining: 200, day });
    // a last saw 300 used, where 300 more would fit; the true total is 800.
    expect(await a.reserveTokens(id, 300)).toEqual({ ok: false, remaining: 200, resetAt: new Date('2026-11-26T00:00:00Z') });
    expect(await a.reserveTokens(id, 200)).toEqual({ ok: true, remaining: 0, day });
    // a now believes the day is full; b gives 500 back.
    expect(await b.settleTokens(id, 500, 0)).toEqual({ remaining: 500 });
    expect(await a.reserveTokens(id, 500)).toEqual({ ok: true, remaining: 0, day });
    expect((await b.usage(id)).usedTokens).toBe(1000);
  });

  it('keeps concurrent settlements and reservations consistent', async () => {
    const { keys, id } = await setup({ requestsPerMinute: 60, tokensPerDay: 1000 });
    for (let i = 0; i < 10; i++) expect((await keys.reserveTokens(id, 100)).ok).toBe(true);
    // Ten requests each give back 60 while ten more try to reserve 100: 600 comes free, so at most 6 fit.
    const [settled, reserved] = await Promise.all([
      Promise.all(Array.from({ length: 10 }, () => keys.settleTokens(id, 100, 40))),
      Promise.all(Array.from({ length: 10 }, () => keys.reserveTokens(id, 100))),
    ]);
    expect(settled).toHaveLength(10);
    const admitted = reserved.filter((r) => r.ok).length;
    expect(admitted).toBeLessThanOrEqual(6);
    expect((await keys.usage(id)).usedTokens).toBe(1000 - 600 + admitted * 100);
  });

  it("settles a request's reservation exactly once, however many settlers race, and lists it until then", async () => {
    const { keys, id, clock } = await setup({ requestsPerMinute: 60, tokensPerDay: 1000 });
    const requestId = unique('req');
    const reservation = await keys.reserveTokens(id, 400, { requestId, promptTokens: 30 });
    expect(reservation).toEqual({ ok: true, remaining: 600, day: '2026-11-25' });
    clock.t += 60_000;
    const open = await keys.unsettledReservations(new Date(clock.t));
    expect(open.filter((r) => r.requestId === requestId)).toEqual([{ keyId: id, requestId, reserved: 400, day: '2026-11-25', promptTokens: 30, at: new Date(start) }]);
    // Not yet old enough for a scan that looks before its time.
    expect((await keys.unsettledReservations(new Date(start))).some((r) => r.requestId === requestId)).toBe(false);

    // The gateway and two reconcilers at once: one settlement, one refund.
    const settled = await Promise.all([100, 100, 100].map((actual) => keys.settleReservation({ keyId: id, requestId, reserved: 400, day: '2026-11-25' }, actual)));
    expect(settled.filter(Boolean)).toHaveLength(1);
    expect((await keys.usage(id)).usedTokens).toBe(100);
    expect(await keys.settleReservation({ keyId: id, requestId, reserved: 400, day: '2026-11-25' }, 0)).toBe(false);
    expect((await keys.usage(id)).usedTokens).toBe(100);
    expect((await keys.unsettledReservations(new Date(clock.t))).some((r) => r.requestId === requestId)).toBe(false);
  });

  it('finishes a settlement whose settler died between its claim and its ledger entry, once', async () => {
    const { keys, id, clock } = await setup({ requestsPerMinute: 60, tokensPerDay: 1000 });
    const requestId = unique('req');
    await keys.reserveTokens(id, 500, { requestId, promptTokens: 10 });
    // The claim alone, as a settler that died right after inserting it leaves it.
    await store(mongo.db).apiKeySettlements.insertOne({ _id: requestId, keyId: id, day: '2026-11-25', reserved: 500, actual: 200, claimedAt: new Date(clock.t), applied: false });
    expect((await keys.usage(id)).usedTokens).toBe(500);
    clock.t += 60_000;
    expect(await keys.unsettledReservations(new Date(clock.t))).toEqual([]);
    expect((await keys.usage(id)).usedTokens).toBe(200);
    // Again: already applied, nothing more.
    await store(mongo.db).apiKeySettlements.updateOne({ _id: requestId }, { $set: { applied: false } });
    await keys.unsettledReservations(new Date(clock.t));
    expect((await keys.usage(id)).usedTokens).toBe(200);
  });

  it('resets at the next UTC midnight, and a reservation made before midnight settles on its own day', async () => {
    const { keys, id, clock } = await setup({ requestsPerMinute: 60, tokensPerDay: 1000 });
    clock.t = Date.UTC(2026, 10, 25, 23, 59, 59, 999);
    const reservation = await keys.reserveTokens(id, 1000);
    expect(reservation).toEqual({ ok: true, remaining: 0, day: '2026-11-25' });
    expect((await keys.reserveTokens(id, 1)).ok).toBe(false);

    clock.t = Date.UTC(2026, 10, 26, 0, 0, 0);
    expect(await keys.usage(id)).toMatchObject({ day: '2026-11-26', usedTokens: 0, remainingTokens: 1000, resetAt: new Date('2026-11-27T00:00:00Z') });
    expect(await keys.reserveTokens(id, 1000)).toEqual({ ok: true, remaining: 0, day: '2026-11-26' });

    // Yesterday's request finishes now, having used 100: the refund goes to yesterday, not today.
    expect(await keys.settleTokens(id, 1000, 100, reservation.ok ? reservation.day : '')).toEqual({ remaining: 900 });
    expect((await keys.reserveTokens(id, 1)).ok).toBe(false);
  });

  it('refuses a reservation over the quota, saying what is left and when it resets', async () => {
    const { keys, id, clock } = await setup({ requestsPerMinute: 60, tokensPerDay: 200_000 });
    const reservation = await keys.reserveTokens(id, 198_766);
    expect(reservation).toEqual({ ok: true, remaining: 1234, day: '2026-11-25' });
    clock.t = Date.UTC(2026, 10, 25, 23, 0, 0);
    expect(await keys.reserveTokens(id, 2000)).toEqual({ ok: false, remaining: 1234, resetAt: new Date(Date.UTC(2026, 10, 26)) });
    expect(await keys.settleTokens(id, 198_766, 766, '2026-11-25')).toEqual({ remaining: 199_234 });
  });

  it('refuses nonsense token counts', async () => {
    const { keys, id } = await setup();
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      await expect(keys.reserveTokens(id, bad)).rejects.toThrow(RangeError);
      await expect(keys.settleTokens(id, bad, 0)).rejects.toThrow(RangeError);
    }
    await expect(keys.reserveTokens('key_nosuchkey', 1)).rejects.toMatchObject({ code: 'KEY_INVALID' });
  });
});

describe('housekeeping', () => {
  it('prunes past request windows and token ledgers, keeping the current ones', async () => {
    const { keys, id, clock } = await setup({ requestsPerMinute: 60, tokensPerDay: 1000 });
    await keys.checkRate(id);
    await keys.reserveTokens(id, 10);
    const mine = { keyId: id };
    const count = async () => [
      await store(mongo.db).apiKeyRequests.countDocuments(mine),
      await store(mongo.db).apiKeyTokens.countDocuments(mine),
    ];
    expect(await count()).toEqual([1, 1]);
    await keys.prune();
    expect(await count()).toEqual([1, 1]);

    clock.t = start + 2 * 60_000; // the window is gone, the day's ledger is not
    await keys.prune();
    expect(await count()).toEqual([0, 1]);
    expect((await keys.usage(id)).usedTokens).toBe(10);

    clock.t = Date.UTC(2026, 10, 27, 0, 0, 0); // a day past the ledger's own day
    await keys.prune();
    expect(await count()).toEqual([0, 0]);
  });

  it('validates the policy', () => {
    expect(() => new ApiKeys(mongo.db, { requestsPerMinute: 0, tokensPerDay: 1 })).toThrow(RangeError);
    expect(() => new ApiKeys(mongo.db, { requestsPerMinute: 1, tokensPerDay: 1.5 })).toThrow(RangeError);
  });

  it('snapshots the policy into each key at issue', async () => {
    const { id } = await setup({ requestsPerMinute: 2, tokensPerDay: 50 });
    const laterPolicy = new ApiKeys(mongo.db, { requestsPerMinute: 100, tokensPerDay: 100_000 }, () => start);
    expect(await laterPolicy.usage(id)).toMatchObject({ requestsPerMinute: 2, tokensPerDay: 50 });
    expect((await laterPolicy.reserveTokens(id, 51)).ok).toBe(false);
  });
});
