/**
 * Registering a node: a verified, signed registration is stored (a node id stays with the
 * operator that first registered it) and the node's actor is started or told. The edge does
 * this for nodes that join through it, and `POST /v1/nodes/register` for anyone else.
 */
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { Db } from 'mongodb';
import { isDuplicateKey } from '../../connections/mongo.ts';
import { searchAttributes, workflowIds } from '../../temporal.config.ts';
import { nodeActorWorkflow, registeredSignal } from '../../workflows/node-actor.ts';
import type { NonceStore } from './signed.ts';
import { verifyRegistration } from './verify.ts';
import { BaseError } from '../../domain/errors.ts';
import { store } from '../../store/index.ts';


export interface RegisterDeps {
  db: Db;
  temporal: Client;
  controlTaskQueue: string;
  chainId: number;
  nonces: NonceStore;
  /** Unix ms. */
  now?: (() => number) | undefined;
}

/** The node id is another operator's. */
export class NodeIdTakenError extends BaseError<'NODE_ID_TAKEN'> {
  override readonly name = 'NodeIdTakenError';
  constructor(nodeId: string) {
    super(`Node id ${nodeId} belongs to another operator; choose another --node-id`, { code: 'NODE_ID_TAKEN' });
  }
}

export interface Registered {
  nodeId: string;
  operator: string;
  status: 'registered' | 're-registered';
}

/**
 * @throws {RegistrationError} when the body is invalid, forged, expired or replayed.
 * @throws {NodeIdTakenError} when another operator holds the id.
 */
export async function registerNode(deps: RegisterDeps, body: unknown): Promise<Registered> {
  const now = deps.now ?? Date.now;
  const verified = await verifyRegistration(body, { chainId: deps.chainId, now: () => Math.floor(now() / 1000), nonces: deps.nonces });
  const registrations = store(deps.db).registrations;
  const existing = await registrations.findOne({ _id: verified.nodeId });
  if (existing && existing.operator.toLowerCase() !== verified.operator.toLowerCase()) throw new NodeIdTakenError(verified.nodeId);
  const modelHashes = Object.fromEntries(verified.models.map((m, i) => [m, verified.modelHashes[i]!.slice(2)]));
  try {
    // Filtered on the operator too: if another operator's registration of a new id wins a
    // race with this one, this upsert's insert hits the unique _id and is refused below,
    // instead of overwriting the winner (rewards follow the registered operator).
    await registrations.updateOne(
      { _id: verified.nodeId, operator: existing?.operator ?? verified.operator },
      { $set: { operator: verified.operator, models: verified.models, modelHashes, gpu: verified.gpu, version: verified.version, registeredAt: new Date() } },
      { upsert: true },
    );
  } catch (err) {
    if (isDuplicateKey(err)) throw new NodeIdTakenError(verified.nodeId);
    throw err;
  }
  try {
    await deps.temporal.workflow.signalWithStart(nodeActorWorkflow, {
      taskQueue: deps.controlTaskQueue,
      workflowId: workflowIds.node(verified.nodeId),
      args: [{ nodeId: verified.nodeId, operator: verified.operator, models: verified.models }],
      signal: registeredSignal,
      signalArgs: [{ models: verified.models, at: now() }],
      // Set when the actor starts and carried across continue-as-new: the Temporal UI filters a
      // node's or an operator's actors by them.
      searchAttributes: { [searchAttributes.node.name]: [verified.nodeId], [searchAttributes.operator.name]: [verified.operator] },
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
  return { nodeId: verified.nodeId, operator: verified.operator, status: existing ? 're-registered' : 'registered' };
}
