import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { getAddress } from 'viem';
import { nodeIdSchema } from '../../domain/heartbeat.ts';
import { operatorActionBodySchema, operatorActions } from '../../domain/operator-action.ts';
import { registrationBodySchema } from '../../domain/registration.ts';
import type { GatewayDeps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { findPublicNode, renderedListing } from '../node-views.ts';
import { performOperatorAction } from '../operator-actions.ts';
import { registerNode } from '../registration/register.ts';
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
  hardware: z.object({ backend: z.string(), devices: z.array(z.string()), memory_bytes: z.number().int().nullable(), as_reported: z.literal(true) }).nullable(),
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

/** The node id's own pattern, so the document says exactly which ids the path takes. */
const nodeParams = z.object({ nodeId: nodeIdSchema });

export const nodeRoutes: FastifyPluginAsyncZod<{ deps: GatewayDeps }> = async (app, { deps }) => {
  /**
   * `GET /v1/nodes[?model=ID][&operator=0x…]`: every node's standing (of one model, of one
   * operator), best reputation first. Public, like the chain.
   */
  const query = z.object({
    model: z.string({ error: 'model must be one model id' }).regex(/^[\w.-]{1,64}$/, 'model must be a model id such as gitblock-tiny').optional(),
    operator: z.string({ error: 'operator must be an address (one), 0x and 40 hex digits' }).regex(/^0x[0-9a-fA-F]{40}$/, 'operator must be an address, 0x and 40 hex digits').optional(),
  });
  const list = z.object({ object: z.literal('list'), data: z.array(nodeView) });
  app.get('/v1/nodes', { schema: { tags: ['nodes'], summary: "Every node's standing", querystring: query, response: { 200: list, ...errorResponses() } } }, async (request, reply) => {
    const { model, operator } = request.query;
    // Registration stores the checksummed address; any casing of the same address finds it.
    const filter = { ...(model ? { model } : {}), ...(operator ? { operator: getAddress(operator.toLowerCase()) } : {}) };
    // Validated and serialized once per listing (see renderedListing), then sent as it is.
    const body = renderedListing(deps, filter, 'json', (data) => JSON.stringify(list.parse({ object: 'list', data })));
    // A string with a JSON content type is sent as it is (the type provider only knows objects).
    return reply.type('application/json; charset=utf-8').send(body as never);
  });

  /** `GET /v1/nodes/<id>`: one node's standing. */
  app.get('/v1/nodes/:nodeId', { schema: { tags: ['nodes'], summary: "One node's standing", params: nodeParams, response: { 200: nodeView, ...errorResponses(404) } } }, async (request) => {
    const { nodeId } = request.params;
    const node = await findPublicNode(deps, nodeId);
    if (!node) throw new ApiError('not_found', `No node ${nodeId} has registered with this network`);
    return node;
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
    deps.registered.add(registered.nodeId, request.body.registration.gpu);
    return reply.status(registered.status === 'registered' ? 201 : 200).send(registered);
  });
};
