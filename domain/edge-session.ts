/**
 * A node's session at the edge: an EIP-712 `EdgeSession` signed by the node's operator key,
 * bound to one edge (`audience`), short-lived, and good once (random nonce). The edge trades
 * it for an opaque session token that the node then sends with every call; a copied signature
 * cannot open a second session, nor one at another edge.
 *
 * Pure: zod, viem types and viem's pure helpers only; the caller supplies the clock.
 */
import { getAddress, type Hex } from 'viem';
import { z } from 'zod';
import { nodeIdSchema } from './heartbeat.ts';
import { addressSchema, freshnessFields, freshnessTypes, registrationDomain, signatureSchema } from './registration.ts';

/**
 * What nodes ask for: long enough to ride out a slow renewal, short enough that a leaked token
 * dies soon. Half the most any signed message may live (maxRegistrationLifetimeSeconds), so
 * clock skew between node and edge still verifies.
 */
export const defaultSessionLifetimeSeconds = 5 * 60;
/** The most requests one node may say it serves at once. */
export const maxSessionSlots = 256;

export const edgeSessionTypes = {
  EdgeSession: [
    { name: 'nodeId', type: 'string' },
    { name: 'operator', type: 'address' },
    { name: 'audience', type: 'string' },
    { name: 'slots', type: 'uint32' },
    ...freshnessTypes,
  ],
} as const;

export const edgeSessionFieldsSchema = z.strictObject({
  nodeId: nodeIdSchema,
  operator: addressSchema,
  /** The edge this session is for, as the edge names itself (its `info`). */
  audience: z.string().min(1).max(128),
  /** Requests the node serves at once: the most free slots its heartbeats may claim. */
  slots: z.number().int().min(1).max(maxSessionSlots),
  ...freshnessFields,
});

export const edgeSessionBodySchema = z.strictObject({
  session: edgeSessionFieldsSchema,
  signature: signatureSchema,
});

export type EdgeSessionFields = z.infer<typeof edgeSessionFieldsSchema>;
export type EdgeSessionBody = z.infer<typeof edgeSessionBodySchema>;

/** The typed data both sides hash: the node signs it, the edge recovers the signer from it. */
export function edgeSessionTypedData(chainId: number, fields: EdgeSessionFields) {
  return {
    domain: registrationDomain(chainId),
    types: edgeSessionTypes,
    primaryType: 'EdgeSession',
    message: {
      nodeId: fields.nodeId,
      operator: getAddress(fields.operator),
      audience: fields.audience,
      slots: fields.slots,
      expiry: BigInt(fields.expiry),
      nonce: fields.nonce as Hex,
    },
  } as const;
}

/** When a node opens its next session: two thirds into this one, so a failed renewal has time to retry. */
export function sessionRenewAfterMs(lifetimeSeconds: number): number {
  return Math.floor((lifetimeSeconds * 1000 * 2) / 3);
}
