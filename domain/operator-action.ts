/**
 * Operator actions: a node's registered operator reinstates a suspended node or retires one by
 * signing an EIP-712 `OperatorAction` with the operator key, and posting it to the gateway.
 * Nothing else can act on a node: nodes hold no Temporal access, and the gateway checks that
 * the signer is the operator the node registered with.
 *
 * Pure: zod, viem types and viem's pure helpers only; the caller supplies the clock.
 *
 * ## JSON body (what the operator POSTs to `/v1/nodes/<nodeId>/reinstate` or `/retire`)
 *
 * ```jsonc
 * {
 *   "action": {
 *     "nodeId": "node-0a1b2c3d4e",   // must be the node in the path
 *     "action": "reinstate",         // 'reinstate' | 'retire'; must be the action in the path
 *     "expiry": 1767225600,          // unix seconds, at most 10 minutes ahead (as registration)
 *     "nonce": "0x5e…"               // 32 random bytes, 0x + 64 lowercase hex
 *   },
 *   "signature": "0x…"                // 65 bytes (r, s, v), 0x + 130 hex
 * }
 * ```
 *
 * The encodings, domain, lifetime and nonce rules are registration's (`registration.ts`), for
 * the same reasons; the primary type differs, so a signed registration is never an action.
 */
import type { Hex } from 'viem';
import { z } from 'zod';
import { nodeIdSchema } from './heartbeat.ts';
import { freshnessFields, freshnessTypes, registrationDomain, signatureSchema } from './registration.ts';
import { effectiveState, type NodeRecord, type NodeState, type OnlineState } from './reputation.ts';

export const operatorActions = ['reinstate', 'retire'] as const;
export type OperatorAction = (typeof operatorActions)[number];

/**
 * How long after its suspension a node may be reinstated: long enough for the verdicts and
 * outcomes already on their way to land, and for a reinstate to be an operator's considered
 * decision rather than a reflex of a script.
 */
export const REINSTATE_COOL_DOWN_MS = 10 * 60 * 1000;

/** The EIP-712 types; `as const` so viem infers the message type from them. */
export const operatorActionTypes = {
  OperatorAction: [
    { name: 'nodeId', type: 'string' },
    { name: 'action', type: 'string' },
    ...freshnessTypes,
  ],
} as const;

export const operatorActionPrimaryType = 'OperatorAction' as const;

/** The signed fields, as JSON. Unknown keys are refused: nothing unsigned rides along. */
export const operatorActionFieldsSchema = z.strictObject({
  nodeId: nodeIdSchema,
  action: z.enum(operatorActions),
  ...freshnessFields,
});

export const operatorActionBodySchema = z.strictObject({
  action: operatorActionFieldsSchema,
  signature: signatureSchema,
});

export type OperatorActionFields = z.infer<typeof operatorActionFieldsSchema>;
/** The JSON body an operator POSTs to the gateway. */
export type OperatorActionBody = z.infer<typeof operatorActionBodySchema>;

/**
 * The complete typed-data definition for one action: what the operator passes to
 * `account.signTypedData` and the gateway to `recoverTypedDataAddress`, so both hash the same.
 *
 * @example
 * const signature = await account.signTypedData(operatorActionTypedData(chainId, { nodeId, action: 'reinstate', expiry, nonce }));
 */
export function operatorActionTypedData(chainId: number, fields: OperatorActionFields) {
  return {
    domain: registrationDomain(chainId),
    types: operatorActionTypes,
    primaryType: operatorActionPrimaryType,
    message: { nodeId: fields.nodeId, action: fields.action, expiry: BigInt(fields.expiry), nonce: fields.nonce as Hex },
  } as const;
}

/** What the network knows of a node when an operator asks to reinstate it: the actor's view fits. */
export interface ReinstateCandidate {
  state: NodeState;
  /** While offline: the state it returns to. */
  resumeState: OnlineState | null;
  record: Pick<NodeRecord, 'lastActivityAt'> & {
    /** Absent where the record predates the stamp; then its latest activity stands in. */
    suspendedAt?: number | null | undefined;
  };
}

/** Why the network refuses, and from when a retry may succeed (ms since epoch) if it knows. */
export interface Refusal {
  reason: string;
  retryAt?: number | undefined;
}

/**
 * The network's rule for a reinstatement, apart from pending spot checks (which need I/O):
 * only a suspended node (also one offline that returns to suspension), and only once the
 * cool-down since its suspension has passed. Undefined when it may go ahead.
 *
 * @example
 * reinstateRefusal(view, Date.now(), REINSTATE_COOL_DOWN_MS);
 * // { reason: 'it is active, not suspended: there is nothing to reinstate' }
 */
export function reinstateRefusal(node: ReinstateCandidate, now: number, coolDownMs: number): Refusal | undefined {
  const state = effectiveState(node);
  if (state !== 'suspended') return { reason: `it is ${state}, not suspended: there is nothing to reinstate` };
  // The latest activity of an older record is no earlier than its suspension: never too soon.
  const since = node.record.suspendedAt ?? node.record.lastActivityAt;
  const retryAt = since + coolDownMs;
  if (now >= retryAt) return undefined;
  return {
    reason: `it was suspended at ${new Date(since).toISOString()} and may be reinstated only ${formatDuration(coolDownMs)} later: retry after ${new Date(retryAt).toISOString()}`,
    retryAt,
  };
}

function formatDuration(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000} minutes` : `${Math.ceil(ms / 1000)} seconds`;
}
