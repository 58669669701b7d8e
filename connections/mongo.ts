import { MongoClient, type Db } from 'mongodb';

export interface MongoHandle extends AsyncDisposable {
  client: MongoClient;
  db: Db;
}

/**
 * Whether a write failed on a unique index (MongoDB's duplicate-key error, 11000): the signal
 * every idempotent insert here relies on, on MongoDB and FerretDB alike.
 */
export function isDuplicateKey(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 11000;
}

/** Connects and pings, so a wrong URI fails here with a clear error instead of on first use. */
export async function connectMongo(uri: string, dbName: string): Promise<MongoHandle> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5_000, connectTimeoutMS: 5_000 });
  await client.connect();
  const db = client.db(dbName);
  await db.command({ ping: 1 });
  return { client, db, [Symbol.asyncDispose]: () => client.close() };
}
