/** The store's declarations against the real MongoDB-wire server (FerretDB here). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMongo, type MongoHandle } from '../connections/mongo.ts';
import { stack, unique } from '../test/helpers.ts';
import { collections, ensureIndexes, store } from './index.ts';

let mongo: MongoHandle;

beforeAll(async () => {
  mongo = await connectMongo(stack().mongodbUri, unique('store'));
});
afterAll(async () => {
  await mongo[Symbol.asyncDispose]();
});

describe('the store', () => {
  it('spells each collection name once', () => {
    const names = Object.values(collections).map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it('creates every declared index, twice without error (a TTL index the server lacks becomes a plain one)', async () => {
    await ensureIndexes(mongo.db);
    await ensureIndexes(mongo.db);
    for (const [key, definition] of Object.entries(collections)) {
      if (definition.indexes.length === 0) continue;
      const made = await store(mongo.db)[key as keyof typeof collections].indexes();
      const keysMade = made.map((index) => JSON.stringify(index['key']));
      for (const index of definition.indexes) expect(keysMade, `${definition.name}`).toContain(JSON.stringify(index.key));
    }
  });

  it('enforces the unique indexes it declares', async () => {
    await ensureIndexes(mongo.db, ['registrationNonces']);
    const nonces = store(mongo.db).registrationNonces;
    const doc = { operator: '0xabc', nonce: unique('n'), expiresAt: new Date(Date.now() + 60_000) };
    await nonces.insertOne({ ...doc });
    await expect(nonces.insertOne({ ...doc })).rejects.toMatchObject({ code: 11000 });
  });

  it('hands out one typed collection per database handle', () => {
    expect(store(mongo.db)).toBe(store(mongo.db));
    expect(store(mongo.db).requests.collectionName).toBe('requests');
  });
});
