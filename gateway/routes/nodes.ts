import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { getAddress } from 'viem';
import type { NodeDocument } from '../../activities/node-projection.ts';
import { nodeIdSchema } from '../../domain/heartbeat.ts';
import { operatorActionBodySchema, operatorActions } from '../../domain/operator-action.ts';
import { registrationBodySchema } from '../../domain/registration.ts';
import type { GatewayDeps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { performOperatorAction } from '../operator-actions.ts';
import { registerNode, registrationsCollection, type RegistrationDoc } from '../registration/register.ts';
import { errorResponses } from '../schemas/common.ts';

/**
 * The nodes' resource: their public standing, their registration and their operators' actions.
 * `POST /v1/nodes/register`: a node proves its operator key by a signed typed-data message.
 * A replayed, expired or forged registration is refused; a node id stays with the operator
 * that first registered it.
 */
const count = z.number().int();
const nodeView = z.object({
  id: z.string(),
  object: z.literal('node'),
  operator: z.string(),
  models: z.array(z.string()),
  gpu: z.string().nullable(),
  state: z.string(),
  reputation: z.number(),
  live: z.boolean(),
  requests_served: count,
  failures: count,
  verification_passes: count,
  verification_failures: count,
  uptime: z.number().nullable(),
  time_to_first_token_ms: z.number().nullable(),
  tokens_per_second: z.number().nullable(),
  updated_at: z.date(),
});

const nodeParams = z.object({
  nodeId: z.string().max(80).refine((id) => nodeIdSchema.safeParse(id).success, 'a node id is 3-63 lowercase letters, digits and dashes'),
});

export const nodeRoutes: FastifyPluginAsyncZod<{ deps: GatewayDeps }> = async (app, { deps }) => {
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
      object: 'node' as const,
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
  const query = z.object({
    model: z.string().regex(/^[\w.-]{1,64}$/, 'a model id such as gitblock-tiny').optional(),
    operator: z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'an address, 0x and 40 hex digits').optional(),
  });
  const list = z.object({ object: z.literal('list'), data: z.array(nodeView) });
  app.get('/v1/nodes', { schema: { tags: ['nodes'], summary: "Every node's standing", querystring: query, response: { 200: list, ...errorResponses() } } }, async (request) => {
    const { model, operator } = request.query;
    // Registration stores the checksummed address; any casing of the same address finds it.
    const filter = { ...(model ? { models: model } : {}), ...(operator ? { operator: getAddress(operator.toLowerCase()) } : {}) };
    const docs = await nodes.find(filter).sort({ reputation: -1 }).limit(1_000).toArray();
    const gpus = await hardwareOf(docs.map((d) => d._id));
    return { object: 'list' as const, data: docs.map((d) => publicView(d, gpus)) };
  });

  /** `GET /v1/nodes/<id>`: one node's standing. */
  app.get('/v1/nodes/:nodeId', { schema: { tags: ['nodes'], summary: "One node's standing", params: nodeParams, response: { 200: nodeView, ...errorResponses(404) } } }, async (request) => {
    const { nodeId } = request.params;
    const doc = await nodes.findOne({ _id: nodeId });
    if (!doc) throw new ApiError('not_found', `No node ${nodeId} has registered with this network`);
    return publicView(doc, await hardwareOf([doc._id]));
  });

  /**
   * `POST /v1/nodes/<id>/reinstate` and `/retire`: signed by the node's registered operator (see
   * domain/operator-action.ts); the network decides whether the action may happen now.
   */
  for (const action of operatorActions) {
    const result = z.object({ nodeId: z.string(), action: z.enum(operatorActions), state: z.string() });
    const schema = { tags: ['nodes'], summary: `${action} a node, signed by its operator`, params: nodeParams, body: operatorActionBodySchema, response: { 200: result, ...errorResponses(401, 403, 404, 409) } };
    app.post(`/v1/nodes/:nodeId/${action}`, { schema }, async (request) => performOperatorAction(deps, request.params.nodeId, action, request.body));
  }

  const registered = z.object({ nodeId: z.string(), operator: z.string(), status: z.enum(['registered', 're-registered']) });
  const registerSchema = { tags: ['nodes'], summary: 'Register a node, signed by its operator', body: registrationBodySchema, response: { 200: registered, 201: registered, ...errorResponses(401, 409) } };
  app.post('/v1/nodes/register', { schema: registerSchema }, async (request, reply) => {
    // A refusal (RegistrationError, NodeIdTakenError) answers by its code (gateway/errors.ts).
    const registered = await registerNode(deps, request.body);
    deps.registered.add(registered.nodeId);
    return reply.status(registered.status === 'registered' ? 201 : 200).send(registered);
  });
};
