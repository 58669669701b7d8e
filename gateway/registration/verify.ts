/**
 * Verifies a node's signed registration. Nodes are untrusted: the body is validated before
 * anything else looks at it, the signer must be the operator the body names, and each nonce
 * is good once, so a captured body cannot be replayed to re-register or to move rewards.
 */
import { getAddress, type Address, type Hex } from 'viem';
import { registrationBodySchema, registrationProblems, registrationTypedData, type RegistrationBody } from '../../domain/registration.ts';
import { authenticate, consumeNonce, refuseTooLongLived, type NonceStore, type SignedDeps, type SignedFailure, type SignedKind } from './signed.ts';
import { BaseError } from '../../domain/errors.ts';

export type RegistrationErrorCode = `REGISTRATION_${SignedFailure}`;

/** A refused registration; `code` is stable for clients, and gateway/errors.ts says what it answers. */
export class RegistrationError extends BaseError<RegistrationErrorCode> {
  override readonly name = 'RegistrationError';
  constructor(code: RegistrationErrorCode, message: string) {
    super(message, { code });
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

export interface VerifyDeps extends SignedDeps {
  nonces: NonceStore;
}

const registrationKind = {
  noun: 'registration',
  schema: registrationBodySchema,
  split: (body) => ({ fields: body.registration, signature: body.signature }),
  typedData: registrationTypedData,
} satisfies SignedKind<RegistrationBody, RegistrationBody['registration']>;

/**
 * Validates, authenticates and consumes a registration body.
 *
 * Order matters: its shape and expiry, then its signature; only a body its operator signed is
 * judged further (its lifetime, its fields' agreement), so an unsigned one is a 401 whatever it
 * asks; the nonce is consumed last, so a forger cannot burn an operator's nonces.
 *
 * @throws {RegistrationError} with the code saying which check failed.
 */
export async function verifyRegistration(body: unknown, deps: VerifyDeps): Promise<VerifiedRegistration> {
  const fail = (failure: SignedFailure, message: string) => new RegistrationError(`REGISTRATION_${failure}`, message);
  const { fields, signer } = await authenticate(registrationKind, body, deps, fail);
  const operator = getAddress(fields.operator);
  if (signer !== operator) {
    // Do not echo the recovered address: for a tampered body it is a meaningless key.
    throw fail('BAD_SIGNATURE', `registration is not signed by operator ${operator} (wrong key, chain id or altered fields)`);
  }
  refuseTooLongLived(registrationKind, fields, deps, fail);
  const problems = registrationProblems(fields);
  if (problems.length) throw fail('INVALID', `invalid registration: ${problems.map((p) => `registration.${p.path.join('.')}: ${p.message}`).join('; ')}`);
  await consumeNonce(registrationKind, operator, fields, deps.nonces, fail);

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
