import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { isModelId, getModel, listModels, type CatalogModel } from '../../models/catalog.ts';
import type { GatewayDeps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { errorResponses } from '../schemas/common.ts';
import { servingNodes } from '../serving-nodes.ts';

const model = z.object({
  id: z.string(),
  object: z.literal('model'),
  created: z.number().int(),
  owned_by: z.string(),
  gitblock: z.object({ name: z.string(), nodes: z.number().int(), free_slots: z.number().int(), max_context: z.number().int(), tokens_per_second: z.number() }),
});

/** One model in OpenAI's shape, with the network's live capacity for it under `gitblock`; the status page shows the same. */
export function modelObject(deps: Pick<GatewayDeps, 'liveNodes' | 'standings'>, model: Readonly<CatalogModel>) {
  // Only nodes the router would send work to: live, serving, registered and not suspended.
  const serving = servingNodes(deps, model.id);
  const contexts = serving.map((n) => n.heartbeat.models.find((m) => m.id === model.id)?.contextSize ?? 0);
  return {
    id: model.id,
    object: 'model' as const,
    created: 0,
    owned_by: 'gitblock-network',
    gitblock: {
      name: model.displayName,
      nodes: serving.length,
      free_slots: serving.reduce((n, s) => n + s.heartbeat.freeSlots, 0),
      max_context: contexts.length ? Math.max(...contexts) : 0,
      tokens_per_second: Math.round(serving.reduce((n, s) => n + s.heartbeat.recentTokensPerSecond, 0)),
    },
  };
}

/**
 * `GET /v1/models`: models with at least one live node, with their live capacity.
 * `GET /v1/models/{id}`: any model of the catalog, served now or not (`gitblock.nodes` says),
 * as OpenAI's retrieve answers it; 404 `model_not_found` for an id the network does not know.
 */
export const modelRoutes: FastifyPluginAsyncZod<{ deps: GatewayDeps }> = async (app, { deps }) => {
  app.get('/v1/models', { schema: { tags: ['inference'], summary: 'Models served now', response: { 200: z.object({ object: z.literal('list'), data: z.array(model) }), ...errorResponses() } } }, async () => {
    deps.metrics.liveNodes.set(servingNodes(deps).length);
    const data = listModels()
      .map((model) => modelObject(deps, model))
      .filter((m) => m.gitblock.nodes > 0);
    return { object: 'list' as const, data };
  });

  app.get(
    '/v1/models/:id',
    { schema: { tags: ['inference'], summary: 'One model of the catalog', params: z.object({ id: z.string().max(256) }), response: { 200: model, ...errorResponses(404) } } },
    async (request) => {
      const { id } = request.params;
      if (!isModelId(id)) throw new ApiError('model_not_found', `The model '${id}' does not exist; GET /v1/models lists the models being served`, 'model');
      return modelObject(deps, getModel(id));
    },
  );
};
