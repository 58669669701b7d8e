import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { keyOf, requireKey } from '../auth.ts';
import type { GatewayDeps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { bearer, errorResponses } from '../schemas/common.ts';
import { store } from '../../store/index.ts';

/** A request's record: its fields grow with its life cycle (routing, running, done), so only the id is fixed here. */
const receipt = z.looseObject({ id: z.string(), status: z.string().optional() });

/** `GET /v1/requests/<id>`: a request's receipt: status, node, why it was chosen, timings, verdict, reward. */
export const requestRoutes: FastifyPluginAsyncZod<{ deps: GatewayDeps }> = async (app, { deps }) => {
  app.addHook('preHandler', requireKey(deps));
  const params = z.object({ id: z.string().regex(/^(chatcmpl-|cmpl-)?[0-9a-f]{24}$/) });
  app.get('/v1/requests/:id', { schema: { tags: ['inference'], summary: "A request's receipt", security: bearer, params, response: { 200: receipt, ...errorResponses(401, 404, 429) } } }, async (request) => {
    const key = keyOf(request);
    const id = request.params.id.replace(/^(chatcmpl-|cmpl-)/, '');
    const doc = await store(deps.db).requests.findOne({ _id: id });
    // Another key's request is reported as absent, not forbidden: ids must not be probeable.
    if (!doc || doc['keyId'] !== key.id) throw new ApiError('not_found', `No request ${id} for this key`);
    const { _id, keyId: _key, ...rest } = doc;
    return { id: _id, ...rest };
  });
};
