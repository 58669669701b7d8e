/**
 * Verifies a node's signed registration. Nodes are untrusted: the body is validated before
 * anything else looks at it, the signer must be the operator the body names, and each nonce
 * is good once, so a captured body cannot be replayed to re-register or to move rewards.
 */
import { getAddress, recoverTypedDataAddress, type Address, type Hex } from 'viem';
import type { z } from 'zod';
import { checkRegistrationExpiry, maxRegistrationLifetimeSeconds, registrationBodySchema, registrationTypedData } from '../../domain/registration.ts';

/** Remembers used nonces until their registration expires; after that the expiry check refuses replays. */
export interface NonceStore {
  /** Records the nonce; false when this operator already used it. `expiresAt` is unix seconds. */
  consume(operator: string, nonce: string, expiresAt: number): Promise<boolean>;
}

export type RegistrationErrorCode =
  | 'REGISTRATION_INVALID'
  | 'REGISTRATION_EXPIRED'
  | 'REGISTRATION_TOO_LONG_LIVED'
  | 'REGISTRATION_BAD_SIGNATURE'
  | 'REGISTRATION_REPLAYED';

const httpStatusOf: Record<RegistrationErrorCode, number> = {
  REGISTRATION_INVALID: 400,
  REGISTRATION_TOO_LONG_LIVED: 400,
  // The credential itself is no good: an authentication failure.
  REGISTRATION_EXPIRED: 401,
  REGISTRATION_BAD_SIGNATURE: 401,
  // Well-formed and authentic, but it conflicts with what was already accepted.
  REGISTRATION_REPLAYED: 409,
};

/** A refused registration; `code` is stable for clients, `httpStatus` is what the gateway answers. */
export class RegistrationError extends Error {
  override readonly name = 'RegistrationError';
  readonly httpStatus: number;

  constructor(
    readonly code: RegistrationErrorCode,
    message: string,
  ) {
    super(message);
    this.httpStatus = httpStatusOf[code];
  }

  /** The body in OpenAI's error shape, which every gateway endpoint answers with. */
  toResponseBody(): { error: { message: string; type: string; code: RegistrationErrorCode } } {
    const type = this.httpStatus === 401 ? 'authentication_error' : 'invalid_request_error';
    return { error: { message: this.message, type, code: this.code } };
  }
}

/** A registration the gateway may act on: authentic, fresh, and seen for the first time. */
export interface VerifiedRegistration {
  nodeId: string;
  /** The recovered signer, EIP-55 checksummed: the only address rewards may go to. */
  operator: Address;
  models: string[];
  /** sha256 of each GGUF as 0x + 64 lowercase hex (heartbeats carry them without the 0x), same order as `models`. */
  modelHashes: Hex[];
  gpu: string;
  version: string;
  /** Unix seconds. */
  expiry: number;
  nonce: Hex;
}

export interface VerifyDeps {
  chainId: number;
  /** Unix seconds. */
  now: () => number;
  nonces: NonceStore;
}

/**
 * Validates, authenticates and consumes a registration body.
 *
 * Order matters: cheap checks first; the nonce is consumed only after the signature holds,
 * so a forger cannot burn an operator's nonces.
 *
 * @throws {RegistrationError} with the code saying which check failed.
 */
export async function verifyRegistration(body: unknown, deps: VerifyDeps): Promise<VerifiedRegistration> {
  const parsed = registrationBodySchema.safeParse(body);
  if (!parsed.success) {
    throw new RegistrationError('REGISTRATION_INVALID', `invalid registration: ${describeIssues(parsed.error)}`);
  }
  const { registration: fields, signature } = parsed.data;

  const now = deps.now();
  switch (checkRegistrationExpiry(fields.expiry, now)) {
    case 'expired':
      throw new RegistrationError('REGISTRATION_EXPIRED', `registration expired at ${fields.expiry}, now is ${now}: sign a fresh one`);
    case 'too-long-lived':
      throw new RegistrationError(
        'REGISTRATION_TOO_LONG_LIVED',
        `registration expiry ${fields.expiry} is more than ${maxRegistrationLifetimeSeconds}s after now (${now}): check the node's clock`,
      );
  }

  const operator = getAddress(fields.operator);
  let signer: Address;
  try {
    signer = await recoverTypedDataAddress({ ...registrationTypedData(deps.chainId, fields), signature: signature as Hex });
  } catch {
    // A 65-byte string that is no valid secp256k1 signature (bad v, r or s out of range).
    throw new RegistrationError('REGISTRATION_BAD_SIGNATURE', 'registration signature is malformed');
  }
  if (signer !== operator) {
    // Do not echo the recovered address: for a tampered body it is a meaningless key.
    throw new RegistrationError('REGISTRATION_BAD_SIGNATURE', `registration is not signed by operator ${operator} (wrong key, chain id or altered fields)`);
  }

  if (!(await deps.nonces.consume(operator, fields.nonce, fields.expiry))) {
    throw new RegistrationError('REGISTRATION_REPLAYED', `registration nonce ${fields.nonce} was already used by ${operator}: sign a fresh one`);
  }

  return {
    nodeId: fields.nodeId,
    operator,
    models: fields.models,
    modelHashes: fields.modelHashes as Hex[],
    gpu: fields.gpu,
    version: fields.version,
    expiry: fields.expiry,
    nonce: fields.nonce as Hex,
  };
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

  /** `now` in unix seconds; used only to forget nonces whose registration has expired. */
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
