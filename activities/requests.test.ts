/** The reward ledger's accruals against the real MongoDB-wire server (FerretDB here). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMongo, type MongoHandle } from '../connections/mongo.ts';
import { stack, unique } from '../test/helpers.ts';
import { createRequestActivities } from './requests.ts';
import { store, type NodeDocument, type RegistrationDoc } from '../store/index.ts';

let mongo: MongoHandle;
const operator = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';

beforeAll(async () => {
  mongo = await connectMongo(stack().mongodbUri, unique('requests'));
  await store(mongo.db).registrations.insertMany([
    { _id: 'node-ok', operator },
    { _id: 'node-suspended', operator },
  ] as RegistrationDoc[]); // only what accrual reads
  await store(mongo.db).nodes.insertMany([
    { _id: 'node-ok', state: 'active', reputation: 0.5 },
    { _id: 'node-suspended', state: 'suspended', reputation: 0.5 },
  ] as NodeDocument[]);
});
afterAll(async () => {
  await mongo?.db.dropDatabase();
  await mongo?.[Symbol.asyncDispose]();
});

describe('accrueReward', () => {
  it('accrues once per request, however often and however concurrently it is called', async () => {
    const activities = createRequestActivities({ db: mongo.db });
    const input = { requestId: 'req-once', nodeId: 'node-ok', modelId: 'gitblock-tiny', completionTokens: 12 };
    const results = await Promise.all(Array.from({ length: 5 }, () => activities.accrueReward(input)));
    const again = await activities.accrueReward({ ...input, completionTokens: 500 });
    const amounts = new Set([...results, again].map((r) => r.amount));
    expect(amounts.size).toBe(1);
    expect(BigInt([...amounts][0]!)).toBeGreaterThan(0n);
    expect(await store(mongo.db).ledger.countDocuments({ _id: 'req-once' as never })).toBe(1);
  });

  it('pays a suspended node nothing', async () => {
    const result = await createRequestActivities({ db: mongo.db }).accrueReward({ requestId: 'req-susp', nodeId: 'node-suspended', modelId: 'gitblock-tiny', completionTokens: 12 });
    expect(result).toMatchObject({ status: 'skipped', amount: '0', reason: 'node node-suspended is suspended' });
    expect(await store(mongo.db).ledger.countDocuments({ _id: 'req-susp' as never })).toBe(0);
  });

  it('refuses a token count that is not a non-negative integer', async () => {
    const activities = createRequestActivities({ db: mongo.db });
    for (const completionTokens of [-1, 1.5, Number.NaN]) {
      await expect(activities.accrueReward({ requestId: 'req-bad', nodeId: 'node-ok', modelId: 'gitblock-tiny', completionTokens })).rejects.toMatchObject({ type: 'LEDGER_BAD_INPUT' });
    }
  });
});
