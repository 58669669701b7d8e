import type { FastifyInstance } from 'fastify';
import { getAddress } from 'viem';
import { nodeIdSchema } from '../../domain/heartbeat.ts';
import { operatorActions } from '../../domain/operator-action.ts';
import type { GatewayDeps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { findPublicNode, listPublicNodes } from '../node-views.ts';
import { performOperatorAction } from '../operator-actions.ts';
import { NodeIdTakenError, registerNode } from '../registration/register.ts';
import { RegistrationError } from '../registration/verify.ts';

/**
 * The nodes' resource: their public standing, their registration and their operators' actions.
 * `POST /v1/nodes/register`: a node proves its operator key by a signed typed-data message.
 * A replayed, expired or forged registration is refused; a node id stays with the operator
 * that first registered it.
 */
export function nodeRoutes(app: FastifyInstance, deps: GatewayDeps) {
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
    return { object: 'list', data: await listPublicNodes(deps, { ...(model ? { model } : {}), ...(operator ? { operator: getAddress(operator.toLowerCase()) } : {}) }) };
  });

  /** `GET /v1/nodes/<id>`: one node's standing. */
  app.get('/v1/nodes/:nodeId', { schema: { tags: ['nodes'] } }, async (request) => {
    const nodeId = nodeIdParam(request.params);
    const node = await findPublicNode(deps, nodeId);
    if (!node) throw new ApiError('not_found', `No node ${nodeId} has registered with this network`);
    return node;
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
    let registered;
    try {
      registered = await registerNode(deps, request.body);
    } catch (err) {
      if (err instanceof NodeIdTakenError) throw new ApiError('conflict', err.message);
      if (err instanceof RegistrationError) {
        const code = err.httpStatus === 409 ? 'conflict' : err.httpStatus === 401 ? 'registration_rejected' : 'invalid_body';
        throw new ApiError(code, err.message);
      }
      throw err;
    }
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
