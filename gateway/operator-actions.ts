/**
 * Operator actions (`POST /v1/nodes/<id>/reinstate`, `/retire`): the only way to act on a node.
 * The body must be signed by the operator the node registered with, fresh and never seen; then
 * the network, not the operator, decides whether the action may happen now, and only then
 * signals the node's actor.
 */
import { WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { getAddress } from 'viem';
import {
  REINSTATE_COOL_DOWN_MS,
  operatorActionBodySchema,
  operatorActionTypedData,
  reinstateRefusal,
  type OperatorAction,
  type OperatorActionBody,
  type OperatorActionFields,
  type Refusal,
} from '../domain/operator-action.ts';
import { timeouts, workflowIds } from '../temporal.config.ts';
import { operatorActionSignal, stateQuery, type NodeActorView, type nodeActorWorkflow } from '../workflows/node-actor.ts';
import type { GatewayDeps } from './deps.ts';
import { ApiError } from './errors.ts';
import { authenticate, consumeNonce, refuseTooLongLived, type SignedFailure, type SignedKind } from './registration/signed.ts';
import { BaseError } from '../domain/errors.ts';
import { store } from '../store/index.ts';

const operatorActionKind = {
  noun: 'operator action',
  schema: operatorActionBodySchema,
  split: (body) => ({ fields: body.action, signature: body.signature }),
  typedData: operatorActionTypedData,
} satisfies SignedKind<OperatorActionBody, OperatorActionFields>;

/** A refused operator action's signature; what it answers is in gateway/errors.ts (`ACTION_*`). */
export class OperatorActionError extends BaseError<`ACTION_${SignedFailure}`> {
  override name = 'OperatorActionError';
}
const fail = (failure: SignedFailure, message: string) => new OperatorActionError(message, { code: `ACTION_${failure}` });

/** What the gateway answers once the actor has taken the action. */
export interface OperatorActionResult {
  nodeId: string;
  action: OperatorAction;
  /** The node's state after the action, from its actor. */
  state: NodeActorView['state'];
}

/**
 * Verifies and performs one operator action on `nodeId`.
 *
 * @throws {ApiError} 400 for a bad body or one signed for another node or action, 401 for a
 * forged, expired or replayed one, 403 when the signer is not the node's operator, 404 for an
 * unknown node, 409 when the network refuses it now (the message says why and until when).
 */
export async function performOperatorAction(deps: GatewayDeps, nodeId: string, action: OperatorAction, body: unknown): Promise<OperatorActionResult> {
  const nowMs = (deps.now ?? Date.now)();
  const signedDeps = { chainId: deps.chainId, now: () => Math.floor(nowMs / 1000) };
  const { fields, signer } = await authenticate(operatorActionKind, body, signedDeps, fail);

  // Who may act on this node first; what the body asks only once its signer may (an unsigned
  // body is a 401 or 403 whatever it asks).
  const registration = await store(deps.db).registrations.findOne({ _id: nodeId });
  if (!registration) throw new ApiError('not_found', `No node ${nodeId} has registered with this network`);
  const operator = getAddress(registration.operator);
  // Do not echo the recovered address: for a tampered body it is a meaningless key.
  if (signer !== operator) throw new ApiError('forbidden', `Only node ${nodeId}'s operator ${operator} may ${action} it; this ${action} is signed by another key (or for another chain, or altered)`);
  // Signed, so a body cannot be moved to another node or turned into the other action.
  if (fields.nodeId !== nodeId) throw new ApiError('invalid_body', `This ${action} is signed for node ${fields.nodeId}, but was posted for node ${nodeId}`, 'action.nodeId');
  if (fields.action !== action) throw new ApiError('invalid_body', `This body is signed to ${fields.action} the node, but was posted to /${action}`, 'action.action');
  refuseTooLongLived(operatorActionKind, fields, signedDeps, fail);
  // Consumed before the network's own checks: a refused action is spent too, so a captured body
  // cannot be held back and played once the cool-down is over.
  await consumeNonce(operatorActionKind, signer, fields, deps.nonces, fail);

  const actor = deps.temporal.workflow.getHandle<typeof nodeActorWorkflow>(workflowIds.node(nodeId));
  const before = await viewOf(actor, nodeId);
  const refusal =
    action === 'retire'
      ? retireRefusal(before)
      : (reinstateRefusal(before, nowMs, deps.reinstateCoolDownMs ?? REINSTATE_COOL_DOWN_MS) ?? (await pendingCheckRefusal(deps, nodeId)));
  if (refusal) {
    const retryAfter = refusal.retryAt === undefined ? {} : { 'retry-after': String(Math.max(1, Math.ceil((refusal.retryAt - nowMs) / 1000))) };
    throw new ApiError('conflict', `Cannot ${action} node ${nodeId}: ${refusal.reason}`, null, retryAfter);
  }
  await actor.signal(operatorActionSignal, { action, at: nowMs });
  // A query is answered after the workflow task that takes the signal: the state it left.
  return { nodeId, action, state: (await viewOf(actor, nodeId)).state };
}

type ActorHandle = WorkflowHandle<typeof nodeActorWorkflow>;

async function viewOf(actor: ActorHandle, nodeId: string): Promise<NodeActorView> {
  try {
    return await actor.query(stateQuery);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new ApiError('not_found', `Node ${nodeId} is registered but has no actor on this network: start the node to register it again`);
    throw err;
  }
}

function retireRefusal(view: NodeActorView): Refusal | undefined {
  return view.state === 'retired' ? { reason: 'it is already retired' } : undefined;
}

/**
 * A spot check still running on one of the node's answers: reinstating before its verdict is in
 * would let a node shed a failure that is about to be found. A record can say pending after its
 * check is gone (one that timed out never writes its outcome), so Temporal has the last word.
 */
async function pendingCheckRefusal(deps: GatewayDeps, nodeId: string): Promise<Refusal | undefined> {
  const pending = await store(deps.db).requests
    .find({ nodeId, 'verification.status': 'pending' }, { projection: { _id: 1 } })
    // A suspended node takes no new work, so the running checks are among its latest answers.
    .sort({ updatedAt: -1 })
    .limit(pendingChecksLooked)
    .toArray();
  for (const { _id: requestId } of pending) {
    try {
      const { status } = await deps.temporal.workflow.getHandle(workflowIds.spotCheck(requestId)).describe();
      if (status.name === 'RUNNING') {
        return { reason: `a spot check of its answer to request ${requestId} is still pending; retry once it has concluded (a check runs for ${timeouts.spotCheckExecution} at most)` };
      }
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  }
  return undefined;
}

/** How many of the node's latest pending records are asked about. */
const pendingChecksLooked = 20;
