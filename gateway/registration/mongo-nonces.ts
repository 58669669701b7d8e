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

export const registrationNoncesCollection = 'registration_nonces';

interface NonceDoc {
  /** Lowercase, so one address spelled two ways is one key. */
  operator: string;
  nonce: string;
  expiresAt: Date;
}


export class MongoNonceStore implements NonceStore {
  private readonly nonces: Collection<NonceDoc>;

  constructor(db: Db) {
    this.nonces = db.collection<NonceDoc>(registrationNoncesCollection);
  }

  /** Creates the indexes; call once at gateway start, before the first `consume`. Idempotent. */
  async ensureIndexes(): Promise<void> {
    // Without the unique index `consume` would accept every replay: this one must exist.
    await this.nonces.createIndex({ operator: 1, nonce: 1 }, { unique: true, name: 'operator_nonce_unique' });
    // Expire at `expiresAt` itself (expireAfterSeconds 0). MongoDB's TTL monitor runs about
    // once a minute, so a record outlives its registration a little, never the other way round.
    // FerretDB 1.x refuses TTL indexes ("not implemented yet"): there a plain index serves
    // prune(), which the gateway runs every minute either way.
    try {
      await this.nonces.createIndex({ expiresAt: 1 }, { expireAfterSeconds: 0, name: 'expires_at_ttl' });
    } catch (err) {
      if (!/not implemented/i.test((err as Error).message)) throw err;
      await this.nonces.createIndex({ expiresAt: 1 }, { name: 'expires_at' });
    }
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
