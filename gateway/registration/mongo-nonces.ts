/**
 * Used nonces of signed requests (registrations and operator actions) in MongoDB, shared by
 * every gateway instance. The unique index makes "first use wins" atomic across instances; the
 * TTL index forgets a nonce once its request has expired, since the expiry check refuses it
 * from then on anyway. One store for both kinds: nonces are 32 random bytes, so an operator's
 * registration and action never meet by chance, and neither is valid as the other.
 */
import type { Collection, Db } from 'mongodb';
import { isDuplicateKey } from '../../connections/mongo.ts';
import type { NonceStore } from './signed.ts';
import { ensureIndexes, store, type NonceDoc } from '../../store/index.ts';

export class MongoNonceStore implements NonceStore {
  private readonly nonces: Collection<NonceDoc>;

  constructor(private readonly db: Db) {
    this.nonces = store(db).registrationNonces;
  }

  /** Creates the indexes (store/registrations.ts); call once at gateway start, before the first `consume`. Idempotent. */
  async ensureIndexes(): Promise<void> {
    await ensureIndexes(this.db, ['registrationNonces']);
  }

  async consume(operator: string, nonce: string, expiresAt: number): Promise<boolean> {
    try {
      await this.nonces.insertOne({ operator: operator.toLowerCase(), nonce: nonce.toLowerCase(), expiresAt: new Date(expiresAt * 1000) });
      return true;
    } catch (err) {
      if (isDuplicateKey(err)) return false;
      throw err;
    }
  }

  /**
   * Deletes expired records by hand, for MongoDB-wire servers whose TTL indexes do not expire
   * documents; harmless where they do.
   */
  async prune(now: Date = new Date()): Promise<number> {
    const { deletedCount } = await this.nonces.deleteMany({ expiresAt: { $lte: now } });
    return deletedCount;
  }
}
