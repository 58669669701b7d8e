/** The local network's epoch schedule, against the real MongoDB-wire server of the test stack. */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { parseConfig } from '../config/env.ts';
import { connectMongo, type MongoHandle } from '../connections/mongo.ts';
import { DEFAULT_GENESIS, EPOCH_SECONDS } from '../domain/emission.ts';
import { stack, unique } from '../test/helpers.ts';
import { describeEpochLength, localEpochSchedule, parseEpochLength } from './local-epochs.ts';
import { store } from '../store/index.ts';

let mongo: MongoHandle;
beforeAll(async () => {
  mongo = await connectMongo(stack().mongodbUri, unique('epochs'));
});
afterAll(async () => {
  await mongo?.db.dropDatabase();
  await mongo?.[Symbol.asyncDispose]();
});

describe('npm start --epoch', () => {
  it('reads lengths such as 2m, 90s and 1h, and refuses others with one line', () => {
    expect([parseEpochLength('2m'), parseEpochLength('90s'), parseEpochLength('90'), parseEpochLength('1h'), parseEpochLength('1w')]).toEqual([120, 90, 90, 3600, 604_800]);
    for (const bad of ['', '2x', '-1m', '10s', '1.5m', 'm']) expect(() => parseEpochLength(bad), bad).toThrow(/^--epoch: expected a length such as 2m, 90s or 1h \(at least 30 s\)/);
    expect([describeEpochLength(120), describeEpochLength(604_800), describeEpochLength(90), describeEpochLength(15)]).toEqual(['2 min', '1 week', '90 s', '15 s']);
  });

  it('starts short epochs now, keeps them across restarts, and refuses to renumber settled ones', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gitblock-epochs-'));
    const config = parseConfig({});
    const nowMs = Date.UTC(2026, 11, 2, 9, 30, 45);
    const first = await localEpochSchedule({ dataDir, db: mongo.db, config, epochSeconds: 120, nowMs });
    expect(first).toEqual({ epochSeconds: 120, genesis: Date.UTC(2026, 11, 2, 9, 30, 0) / 1000 });
    expect(JSON.parse(readFileSync(join(dataDir, 'epochs.json'), 'utf8'))).toEqual(first);
    // A later start with the same length numbers epochs as before.
    expect(await localEpochSchedule({ dataDir, db: mongo.db, config, epochSeconds: 120, nowMs: nowMs + 3_600_000 })).toEqual(first);

    await store(mongo.db).epochs.insertOne({ _id: 7, status: 'settled' } as never);
    await expect(localEpochSchedule({ dataDir, db: mongo.db, config })).rejects.toThrow(
      `${dataDir} holds settled epochs (up to 7) of 2 min; epochs of 1 week would renumber them. Start with that length again, or use another data folder: GITBLOCK_DATA_DIR=${dataDir}-1week npm start -- --epoch ...`,
    );
    expect(await localEpochSchedule({ dataDir, db: mongo.db, config, epochSeconds: 120 })).toEqual(first);
  });

  it('keeps the weekly default for a folder that settled before the schedule was recorded', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gitblock-epochs-'));
    const db = mongo.client.db(unique('epochs'));
    await store(db).epochs.insertOne({ _id: 40, status: 'settled' } as never);
    expect(await localEpochSchedule({ dataDir, db, config: parseConfig({}) })).toEqual({ genesis: DEFAULT_GENESIS, epochSeconds: EPOCH_SECONDS });
    await expect(localEpochSchedule({ dataDir, db, config: parseConfig({}), epochSeconds: 60 })).rejects.toThrow(/holds settled epochs \(up to 40\) of 1 week; epochs of 1 min would renumber them/);
    await db.dropDatabase();
  });
});
