import type { FastifyInstance } from 'fastify';
import { authenticate } from '../auth.ts';
import type { GatewayDeps } from '../deps.ts';
import { ApiError } from '../errors.ts';

/** `GET /v1/requests/<id>`: a request's receipt: status, node, why it was chosen, timings, verdict, reward. */
export function requestRoutes(app: FastifyInstance, deps: GatewayDeps) {
  app.get('/v1/requests/:id', { schema: { tags: ['inference'], params: { type: 'object', properties: { id: { type: 'string', pattern: '^(chatcmpl-|cmpl-)?[0-9a-f]{24}$' } } } } }, async (request) => {
    const key = await authenticate(deps, request);
    const id = (request.params as { id: string }).id.replace(/^(chatcmpl-|cmpl-)/, '');
    const doc = await deps.db.collection<Record<string, unknown> & { _id: string }>('requests').findOne({ _id: id });
    // Another key's request is reported as absent, not forbidden: ids must not be probeable.
    if (!doc || doc['keyId'] !== key.id) throw new ApiError('not_found', `No request ${id} for this key`);
    const { _id, keyId: _key, ...rest } = doc;
    return { id: _id, ...rest };
  });
}
