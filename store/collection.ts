/**
 * How a stored collection is declared: its name, its document type and its indexes, in one
 * place (store/index.ts lists them all). Code reaches a collection through `store(db)`, never
 * by spelling its name, so a name or a document type cannot drift apart between two files.
 */
import type { Collection, CreateIndexesOptions, Document, IndexSpecification } from 'mongodb';

export interface IndexDefinition {
  key: IndexSpecification;
  options?: CreateIndexesOptions;
}

export interface StoredCollection<T extends Document> {
  readonly name: string;
  readonly indexes: readonly IndexDefinition[];
  /** Never read: carries the document type for `store(db)`. */
  readonly document?: T;
}

export function storedCollection<T extends Document>(name: string, indexes: IndexDefinition[] = []): StoredCollection<T> {
  return { name, indexes };
}

/** MongoDB's NotImplemented: FerretDB 1.x answers it for TTL indexes. */
const notImplementedCode = 238;

function notImplemented(err: unknown): boolean {
  return (err as { code?: unknown }).code === notImplementedCode || /not implemented/i.test((err as Error).message ?? '');
}

/**
 * Creates one collection's indexes. Idempotent. A TTL index the server does not implement
 * (FerretDB 1.x) becomes a plain index on the same key, which serves the prune that every
 * collection with an `expiresAt` runs anyway.
 */
export async function createIndexes(collection: Collection, indexes: readonly IndexDefinition[]): Promise<void> {
  for (const { key, options } of indexes) {
    try {
      await collection.createIndex(key, options ?? {});
    } catch (err) {
      if (options?.expireAfterSeconds === undefined || !notImplemented(err)) throw err;
      const { expireAfterSeconds: _ttl, ...plain } = options;
      await collection.createIndex(key, { ...plain, ...(plain.name ? { name: plain.name.replace(/_ttl$/, '') } : {}) });
    }
  }
}

export type DocumentOf<C> = C extends StoredCollection<infer T> ? T : never;
