/** Node registrations (written by gateway/registration/register.ts) and the nonces of signed requests. */
import { storedCollection } from './collection.ts';


export interface RegistrationDoc {
  _id: string;
  operator: string;
  models: string[];
  /** Model id → sha256 of its GGUF, lowercase hex without 0x. */
  modelHashes: Record<string, string>;
  gpu: string;
  version: string;
  registeredAt: Date;
}

export const registrations = storedCollection<RegistrationDoc>('node_registrations', [{ key: { operator: 1 } }]);

/**
 * A used nonce of a signed request (a registration or an operator action). The unique index
 * makes "first use wins" atomic across gateway instances; the TTL index forgets a nonce once its
 * request has expired (MongoDB's TTL monitor runs about once a minute, so a record outlives its
 * request a little, never the other way round). Without the unique index every replay would pass.
 */
export interface NonceDoc {
  /** Lowercase, so one address spelled two ways is one key. */
  operator: string;
  nonce: string;
  expiresAt: Date;
}

export const registrationNonces = storedCollection<NonceDoc>('registration_nonces', [
  { key: { operator: 1, nonce: 1 }, options: { unique: true, name: 'operator_nonce_unique' } },
  { key: { expiresAt: 1 }, options: { expireAfterSeconds: 0, name: 'expires_at_ttl' } },
]);
