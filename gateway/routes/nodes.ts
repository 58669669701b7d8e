import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { workflowIds } from '../../temporal.config.ts';
import { nodeActorWorkflow, registeredSignal } from '../../workflows/node-actor.ts';
import type { GatewayDeps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { RegistrationError, verifyRegistration } from '../registration/verify.ts';

/**
 * `POST /v1/nodes/register`: a node proves its operator key by a signed typed-data message.
 * A replayed, expired or forged registration is refused; a node id stays with the operator
 * that first registered it.
 */
export function nodeRoutes(app: FastifyInstance, deps: GatewayDeps) {
  const registrations = deps.db.collection<{ _id: string; operator: string }>('node_registrations');

  app.post('/v1/nodes/register', { schema: { tags: ['nodes'] } }, async (request, reply) => {
    let verified;
    try {
      verified = await verifyRegistration(request.body, { chainId: deps.chainId, now: () => Math.floor((deps.now ?? Date.now)() / 1000), nonces: deps.nonces });
    } catch (err) {
      if (err instanceof RegistrationError) {
        const code = err.httpStatus === 409 ? 'conflict' : err.httpStatus === 401 ? 'registration_rejected' : 'invalid_body';
        throw new ApiError(code, err.message);
      }
      throw err;
    }
    const existing = await registrations.findOne({ _id: verified.nodeId });
    if (existing && existing.operator.toLowerCase() !== verified.operator.toLowerCase()) {
      throw new ApiError('conflict', `Node id ${verified.nodeId} belongs to another operator; choose another --node-id`);
    }
    const modelHashes = Object.fromEntries(verified.models.map((m, i) => [m, verified.modelHashes[i]!.slice(2)]));
    await registrations.updateOne(
      { _id: verified.nodeId },
      { $set: { operator: verified.operator, models: verified.models, modelHashes, gpu: verified.gpu, version: verified.version, registeredAt: new Date() } },
      { upsert: true },
    );
    deps.registered.add(verified.nodeId);
    const at = (deps.now ?? Date.now)();
    try {
      await deps.temporal.workflow.signalWithStart(nodeActorWorkflow, {
        taskQueue: deps.controlTaskQueue,
        workflowId: workflowIds.node(verified.nodeId),
        args: [{ nodeId: verified.nodeId, operator: verified.operator, models: verified.models }],
        signal: registeredSignal,
        signalArgs: [{ models: verified.models, at }],
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    return reply.status(existing ? 200 : 201).send({ nodeId: verified.nodeId, status: existing ? 're-registered' : 'registered', operator: verified.operator });
  });
}
