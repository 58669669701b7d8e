import type { FastifyInstance } from 'fastify';
import { getAddress } from 'viem';
import type { NodeDocument } from '../../activities/node-projection.ts';
import { nodeIdSchema } from '../../domain/heartbeat.ts';
import { operatorActions } from '../../domain/operator-action.ts';
import type { GatewayDeps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { performOperatorAction } from '../operator-actions.ts';
import { registerNode, registrationsCollection, type RegistrationDoc } from '../registration/register.ts';

/**
 * The nodes' resource: their public standing, their registration and their operators' actions.
 * `POST /v1/nodes/register`: a node proves its operator key by a signed typed-data message.
 * A replayed, expired or forged registration is refused; a node id stays with the operator
 * that first registered it.
 */
export function nodeRoutes(app: FastifyInstance, deps: GatewayDeps) {
  const nodes = deps.db.collection<NodeDocument>('nodes');
  const registrations = deps.db.collection<RegistrationDoc>(registrationsCollection);

  /** The hardware each node said it runs on when it registered (the actor's document has none). */
  const hardwareOf = async (ids: string[]) => {
    const gpus = new Map<string, string>();
    for await (const r of registrations.find({ _id: { $in: ids } }, { projection: { _id: 1, gpu: 1 } })) gpus.set(r._id, r.gpu);
    return gpus;
  };

  /** A node as the public sees it: its actor's standing, its hardware and whether its heartbeat is live. */
  const publicView = (doc: NodeDocument, gpus: Map<string, string>) => {
    const r = doc.record;
    return {
      id: doc._id,
      object: 'node',
      operator: doc.operator,
      models: doc.models,
      gpu: gpus.get(doc._id) ?? null,
      state: doc.state,
      reputation: Math.round(doc.reputation * 10_000) / 10_000,
      live: deps.liveNodes.get(doc._id) !== undefined,
      requests_served: r?.requestsServed ?? 0,
      failures: r?.failures ?? 0,
      verification_passes: r?.verificationPasses ?? 0,
      verification_failures: r?.verificationFailures ?? 0,
      uptime: r?.uptimeChecks ? Math.round(((r.uptimeLive ?? 0) / r.uptimeChecks) * 10_000) / 10_000 : null,
      time_to_first_token_ms: r?.latencyEmaMs ?? null,
      tokens_per_second: r?.tokensPerSecondEma ?? null,
      updated_at: doc.updatedAt,
    };
  };

  /**
   * `GET /v1/nodes[?model=ID][&operator=0x…]`: every node's standing (of one model, of one
   * operator), best reputation first. Public, like the chain.
   */
  app.get('/v1/nodes', { schema: { tags: ['nodes'] } }, async (request) => {
    const { model, operator } = (request.query ?? {}) as { model?: unknown; operator?: unknown };
    if (model !== undefined && (typeof model !== 'string' || !/^[\w.-]{1,64}$/.test(model))) {
      throw new ApiError('invalid_body', 'Invalid query: model must be a model id such as gitblock-tiny', 'model');
    }
    if (operator !== undefined && (typeof operator !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(operator))) {
      throw new ApiError('invalid_body', 'Invalid query: operator must be an address, 0x and 40 hex digits', 'operator');
    }
    // Registration stores the checksummed address; any casing of the same address finds it.
    const filter = { ...(model ? { models: model } : {}), ...(operator ? { operator: getAddress(operator.toLowerCase()) } : {}) };
    const docs = await nodes.find(filter).sort({ reputation: -1 }).limit(1_000).toArray();
    const gpus = await hardwareOf(docs.map((d) => d._id));
    return { object: 'list', data: docs.map((d) => publicView(d, gpus)) };
  });

  /** `GET /v1/nodes/<id>`: one node's standing. */
  app.get('/v1/nodes/:nodeId', { schema: { tags: ['nodes'] } }, async (request) => {
    const nodeId = nodeIdParam(request.params);
    const doc = await nodes.findOne({ _id: nodeId });
    if (!doc) throw new ApiError('not_found', `No node ${nodeId} has registered with this network`);
    return publicView(doc, await hardwareOf([doc._id]));
  });

  /**
   * `POST /v1/nodes/<id>/reinstate` and `/retire`: signed by the node's registered operator (see
   * domain/operator-action.ts); the network decides whether the action may happen now.
   */
  for (const action of operatorActions) {
    app.post(`/v1/nodes/:nodeId/${action}`, { schema: { tags: ['nodes'] } }, async (request) => {
      return performOperatorAction(deps, nodeIdParam(request.params), action, request.body);
    });
  }

  app.post('/v1/nodes/register', { schema: { tags: ['nodes'] } }, async (request, reply) => {
    // A refusal (RegistrationError, NodeIdTakenError) answers by its code (gateway/errors.ts).
    const registered = await registerNode(deps, request.body);
    deps.registered.add(registered.nodeId);
    return reply.status(registered.status === 'registered' ? 201 : 200).send(registered);
  });
}

/** The `:nodeId` of a path, refused unless it is a valid node id. */
function nodeIdParam(params: unknown): string {
  const { nodeId } = params as { nodeId: string };
  if (!nodeIdSchema.safeParse(nodeId).success) throw new ApiError('invalid_body', `Invalid node id ${JSON.stringify(nodeId.slice(0, 80))}: 3-63 lowercase letters, digits and dashes`, 'nodeId');
  return nodeId;
}
