/**
 * What every signed request from an operator (a node's registration, an operator action) goes
 * through before the gateway acts on it: validated against its schema, within its short
 * lifetime, its signer recovered, and its nonce used once. The caller decides who the signer
 * must be, between authenticating and consuming, so a forger never burns an operator's nonce.
 */
import { recoverTypedDataAddress, type Address, type Hex, type TypedDataDefinition } from 'viem';
import type { z } from 'zod';
import { checkRegistrationExpiry, maxRegistrationLifetimeSeconds } from '../../domain/registration.ts';

/** Remembers used nonces until their message expires; after that the expiry check refuses replays. */
export interface NonceStore {
  /** Records the nonce; false when this operator already used it. `expiresAt` is unix seconds. */
  consume(operator: string, nonce: string, expiresAt: number): Promise<boolean>;
}

/** Which check refused a signed request; each caller turns it into its own error. */
export type SignedFailure = 'INVALID' | 'EXPIRED' | 'TOO_LONG_LIVED' | 'BAD_SIGNATURE' | 'REPLAYED';

/** The fields every signed message carries besides its own. */
export interface SignedFields {
  /** Unix seconds. */
  expiry: number;
  /** 0x + 64 lowercase hex. */
  nonce: string;
}

/** One kind of signed request: how its body is read and what its signature covers. */
export interface SignedKind<Body, Fields extends SignedFields> {
  /** Names the message in errors: "registration", "operator action". */
  noun: string;
  schema: z.ZodType<Body>;
  /** The signed fields and the signature of a valid body. */
  split(body: Body): { fields: Fields; signature: string };
  typedData(chainId: number, fields: Fields): TypedDataDefinition;
}

export interface SignedDeps {
  chainId: number;
  /** Unix seconds. */
  now: () => number;
}

/** Builds the error a caller throws for a failed check. */
export type Fail = (failure: SignedFailure, message: string) => Error;

/**
 * Validates a body's shape, refuses it once expired, and recovers who signed it. Consumes
 * nothing and judges nothing else: the caller checks the signer is the one it must be, then
 * what was asked ({@link refuseTooLongLived}, its own rules), then calls {@link consumeNonce}.
 * So a body nobody signed is a 401 whatever it asks: a client without the key learns that.
 *
 * @throws what `fail` builds: INVALID (its shape), EXPIRED or BAD_SIGNATURE (unrecoverable).
 */
export async function authenticate<Body, Fields extends SignedFields>(
  kind: SignedKind<Body, Fields>,
  body: unknown,
  deps: SignedDeps,
  fail: Fail,
): Promise<{ fields: Fields; signer: Address }> {
  const parsed = kind.schema.safeParse(body);
  if (!parsed.success) throw fail('INVALID', `invalid ${kind.noun}: ${describeIssues(parsed.error)}`);
  const { fields, signature } = kind.split(parsed.data);

  const now = deps.now();
  if (checkRegistrationExpiry(fields.expiry, now) === 'expired') throw fail('EXPIRED', `${kind.noun} expired at ${fields.expiry}, now is ${now}: sign a fresh one`);

  try {
    return { fields, signer: await recoverTypedDataAddress({ ...kind.typedData(deps.chainId, fields), signature: signature as Hex }) };
  } catch {
    // A 65-byte string that is no valid secp256k1 signature (bad v, r or s out of range).
    throw fail('BAD_SIGNATURE', `${kind.noun} signature is malformed`);
  }
}

/**
 * Refuses a message that would live longer than any may (a leaked body must die fast), once its
 * signer is known to be the right one.
 *
 * @throws what `fail` builds for TOO_LONG_LIVED.
 */
export function refuseTooLongLived(kind: { noun: string }, fields: SignedFields, deps: SignedDeps, fail: Fail): void {
  const now = deps.now();
  if (checkRegistrationExpiry(fields.expiry, now) === 'too-long-lived') {
    throw fail('TOO_LONG_LIVED', `${kind.noun} expiry ${fields.expiry} is more than ${maxRegistrationLifetimeSeconds}s after now (${now}): check the signer's clock`);
  }
}

/**
 * Uses the message's nonce for `signer`, once.
 *
 * @throws what `fail` builds for REPLAYED when the signer already used it.
 */
export async function consumeNonce(kind: { noun: string }, signer: Address, fields: SignedFields, nonces: NonceStore, fail: Fail): Promise<void> {
  if (!(await nonces.consume(signer, fields.nonce, fields.expiry))) {
    throw fail('REPLAYED', `${kind.noun} nonce ${fields.nonce} was already used by ${signer}: sign a fresh one`);
  }
}

/** "registration.models.3: …; signature: …", capped so a huge garbage body gives a short answer. */
function describeIssues(error: z.ZodError): string {
  const maxListed = 10;
  const parts = error.issues.slice(0, maxListed).map((i) => `${i.path.length ? i.path.join('.') : '(body)'}: ${i.message}`);
  if (error.issues.length > maxListed) parts.push(`and ${error.issues.length - maxListed} more`);
  return parts.join('; ');
}

/**
 * In-process nonce store, for unit tests and test doubles; the gateway uses MongoDB so that
 * every gateway instance sees every used nonce.
 */
export class MemoryNonceStore implements NonceStore {
  private readonly used = new Map<string, number>();

  /** `now` in unix seconds; used only to forget nonces whose message has expired. */
  constructor(private readonly now: () => number = () => Math.floor(Date.now() / 1000)) {}

  async consume(operator: string, nonce: string, expiresAt: number): Promise<boolean> {
    this.prune();
    // Case-folded so one address or nonce spelled two ways is still one key.
    const key = `${operator.toLowerCase()}/${nonce.toLowerCase()}`;
    if (this.used.has(key)) return false;
    this.used.set(key, expiresAt);
    return true;
  }

  get size(): number {
    return this.used.size;
  }

  private prune(): void {
    const now = this.now();
    for (const [key, expiresAt] of this.used) if (expiresAt <= now) this.used.delete(key);
  }
}
