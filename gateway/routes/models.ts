import type { FastifyInstance } from 'fastify';
import { listModels } from '../../models/catalog.ts';
import type { GatewayDeps } from '../deps.ts';
import { servingNodes } from '../serving-nodes.ts';

/** `GET /v1/models`: models with at least one node able to serve now, with their live capacity. */
export function modelRoutes(app: FastifyInstance, deps: GatewayDeps) {
  app.get('/v1/models', { schema: { tags: ['inference'] } }, async () => {
    const live = servingNodes(deps);
    deps.metrics.liveNodes.set(live.length);
    const data = listModels().flatMap((model) => {
      const serving = live.filter((n) => n.heartbeat.models.some((m) => m.id === model.id));
      if (!serving.length) return [];
      const contexts = serving.map((n) => n.heartbeat.models.find((m) => m.id === model.id)!.contextSize);
      return [
        {
          id: model.id,
          object: 'model',
          created: 0,
          owned_by: 'gitblock-network',
          gitblock: {
            name: model.displayName,
            nodes: serving.length,
            free_slots: serving.reduce((n, s) => n + s.heartbeat.freeSlots, 0),
            max_context: Math.max(...contexts),
            tokens_per_second: Math.round(serving.reduce((n, s) => n + s.heartbeat.recentTokensPerSecond, 0)),
          },
        },
      ];
    });
    return { object: 'list', data };
  });
}
