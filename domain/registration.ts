/**
 * Node registration: a node proves which operator key it pays out to by signing an EIP-712
 * `NodeRegistration` with that key. The gateway recovers the signer and credits rewards only
 * to it, so a node cannot claim someone else's address and a copied body cannot be replayed
 * (random nonce, short expiry).
 *
 * Pure: zod, viem types and viem's pure helpers only; the caller supplies the clock.
 *
 * ## JSON body (what the node POSTs to `/v1/nodes/register`)
 *
 * ```jsonc
 * {
 *   "registration": {
 *     "nodeId": "node-0a1b2c3d4e",            // /^[a-z0-9][a-z0-9-]{2,62}$/
 *     "operator": "0xAbC…",                   // 20-byte address; mixed case must be a valid checksum
 *     "models": ["qwen2.5-0.5b-instruct"],    // 1..32 distinct ids, /^[a-z0-9][a-z0-9.-]{0,63}$/
 *     "modelHashes": ["0x9f86d0…"],           // sha256 of each GGUF as bytes32: 0x + 64 lowercase hex, same order as models
 *     "gpu": "NVIDIA H100 80GB HBM3",         // ≤ 128 chars
 *     "version": "0.1.0",                     // ≤ 32 chars
 *     "expiry": 1767225600,                   // unix seconds, a JSON integer (signed as uint64)
 *     "nonce": "0x5e…"                        // 32 random bytes, 0x + 64 lowercase hex
 *   },
 *   "signature": "0x…"                         // 65 bytes (r, s, v), 0x + 130 hex
 * }
 * ```
 *
 * Why these encodings: `expiry` is a plain JSON number because any realistic unix time is far
 * below 2^53, so no bigint-as-string dance is needed; it is widened to bigint for signing.
 * Every other field is carried exactly as it is signed (hashes and nonce as 0x-prefixed
 * bytes32), so the body is the EIP-712 message; note that heartbeats carry the same hashes
 * without the 0x. Hex is lowercase-only so one value has one spelling: otherwise `0xAB…` and
 * `0xab…` would be the same signed nonce but two different nonce-store keys.
 */
import type { Address, Hex, TypedDataDomain } from 'viem';
import { getAddress, isAddress } from 'viem';
import { z } from 'zod';
import { nodeIdSchema } from './heartbeat.ts';

/** An expiry further than this past the gateway's clock is refused: a leaked body dies fast. */
export const maxRegistrationLifetimeSeconds = 10 * 60;
/**
 * What nodes ask for by default. Half the maximum, so up to five minutes of clock skew
 * between node and gateway in either direction still verifies.
 */
export const defaultRegistrationLifetimeSeconds = 5 * 60;

export const registrationLimits = {
  models: 32,
  gpuChars: 128,
  versionChars: 32,
} as const;

/**
 * The EIP-712 domain. No `verifyingContract`: the message is checked off-chain by the gateway,
 * and `chainId` already keeps a testnet registration from counting on mainnet.
 */
export function registrationDomain(chainId: number) {
  return { name: 'GitBlock', version: '1', chainId } as const satisfies TypedDataDomain;
}

/** The last two fields of every signed message: when it stops counting, and what makes it count once. */
export const freshnessTypes = [
  { name: 'expiry', type: 'uint64' },
  { name: 'nonce', type: 'bytes32' },
] as const;

/** The EIP-712 types; `as const` so viem infers the message type from them. */
export const registrationTypes = {
  NodeRegistration: [
    { name: 'nodeId', type: 'string' },
    { name: 'operator', type: 'address' },
    { name: 'models', type: 'string[]' },
    { name: 'modelHashes', type: 'bytes32[]' },
    { name: 'gpu', type: 'string' },
    { name: 'version', type: 'string' },
    ...freshnessTypes,
  ],
} as const;

export const registrationPrimaryType = 'NodeRegistration' as const;

const modelIdSchema = z.string().regex(/^[a-z0-9][a-z0-9.-]{0,63}$/, 'model ids are 1-64 lowercase letters, digits, dots and dashes');
/** A bytes32 as signed: 0x + lowercase hex, so one value has one spelling (see above). */
export const bytes32Schema = (what: string) => z.string().regex(/^0x[0-9a-f]{64}$/, `expected ${what} as 0x + 64 lowercase hex digits`);
/** An expiry as signed: unix seconds, a plain JSON integer. */
export const expirySchema = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
/** The schema of `freshnessTypes`' fields, as JSON. */
export const freshnessFields = { expiry: expirySchema, nonce: bytes32Schema('32 random bytes') };
/** A 65-byte (r, s, v) signature. */
export const signatureSchema = z.string().regex(/^0x[0-9a-fA-F]{130}$/, 'expected a 65-byte signature as 0x + 130 hex digits');
/** 0x and 40 hex digits in any case: an address's shape, not yet its checksum. */
export const hexAddressSchema = z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'expected a 0x-prefixed 20-byte address');
/** A mixed-case address carries an EIP-55 checksum; a wrong one is a typo, not an address. */
const checksumOk = (a: string) => isAddress(a);
export const addressSchema = hexAddressSchema.refine(checksumOk, 'address checksum does not match');

/**
 * The signed fields' shape, as JSON. Unknown keys are refused: nothing unsigned rides along.
 * What ties one field to another is {@link registrationProblems}.
 */
const registrationShape = z.strictObject({
  nodeId: nodeIdSchema,
  operator: hexAddressSchema,
  // Distinct: said in the OpenAPI document; checked by registrationProblems.
  models: z.array(modelIdSchema).min(1).max(registrationLimits.models).meta({ uniqueItems: true }),
  modelHashes: z.array(bytes32Schema('a sha256')).min(1).max(registrationLimits.models),
  gpu: z.string().max(registrationLimits.gpuChars),
  version: z.string().max(registrationLimits.versionChars),
  ...freshnessFields,
});

/**
 * What a registration of the right shape may still get wrong, each with the field it is at: a
 * hash count other than the model count, a model listed twice, an operator whose mixed case is
 * no valid checksum. The gateway asks this once the signature holds (gateway/registration/
 * verify.ts), so that a body nobody signed is refused as such, whatever else is wrong with it.
 */
export function registrationProblems(r: z.infer<typeof registrationShape>): { path: (string | number)[]; message: string }[] {
  const problems: { path: (string | number)[]; message: string }[] = [];
  if (!checksumOk(r.operator)) problems.push({ path: ['operator'], message: 'address checksum does not match' });
  if (r.modelHashes.length !== r.models.length) problems.push({ path: ['modelHashes'], message: `expected one hash per model (${r.models.length}), got ${r.modelHashes.length}` });
  const seen = new Set<string>();
  r.models.forEach((id, i) => {
    if (seen.has(id)) problems.push({ path: ['models', i], message: `model ${id} is listed twice` });
    seen.add(id);
  });
  return problems;
}

/** The signed fields, as JSON, wholly checked: their shape and {@link registrationProblems}. */
export const registrationFieldsSchema = registrationShape.superRefine((r, ctx) => {
  for (const { path, message } of registrationProblems(r)) ctx.addIssue({ code: 'custom', path, message });
});

/** The body as the route takes it: the fields' shape and a signature (verify.ts checks the rest). */
export const registrationBodySchema = z.strictObject({
  registration: registrationShape,
  signature: signatureSchema,
});

/** The signed fields as they travel in JSON. */
export type RegistrationFields = z.infer<typeof registrationFieldsSchema>;
/** The JSON body a node POSTs to the gateway. */
export type RegistrationBody = z.infer<typeof registrationBodySchema>;

/**
 * The EIP-712 message, i.e. the JSON fields in the types the signature commits to. A type
 * alias, not an interface, so that it fits viem's `TypedDataDefinition` (a `Record`).
 */
export type RegistrationMessage = {
  nodeId: string;
  operator: Address;
  models: readonly string[];
  modelHashes: readonly Hex[];
  gpu: string;
  version: string;
  expiry: bigint;
  nonce: Hex;
};

/** Converts validated JSON fields into the EIP-712 message (checksummed operator, expiry as bigint). */
export function toRegistrationMessage(fields: RegistrationFields): RegistrationMessage {
  return {
    nodeId: fields.nodeId,
    operator: getAddress(fields.operator),
    models: fields.models,
    modelHashes: fields.modelHashes as Hex[],
    gpu: fields.gpu,
    version: fields.version,
    expiry: BigInt(fields.expiry),
    nonce: fields.nonce as Hex,
  };
}

/**
 * The complete typed-data definition for one registration: what the node passes to
 * `account.signTypedData` and the gateway to `recoverTypedDataAddress`, so both hash the same.
 */
export function registrationTypedData(chainId: number, fields: RegistrationFields) {
  return {
    domain: registrationDomain(chainId),
    types: registrationTypes,
    primaryType: registrationPrimaryType,
    message: toRegistrationMessage(fields),
  } as const;
}

/**
 * Why an expiry is unacceptable at `now`, or undefined when it is fine. Every signed request
 * (registrations and operator actions) lives by this window.
 */
export function checkRegistrationExpiry(expiry: number, now: number): 'expired' | 'too-long-lived' | undefined {
  // Exclusive: at `expiry` itself the registration is over, which is also when nonce records may go.
  if (expiry <= now) return 'expired';
  if (expiry > now + maxRegistrationLifetimeSeconds) return 'too-long-lived';
  return undefined;
}
