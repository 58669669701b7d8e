import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { GatewayDeps } from '../deps.ts';
import { servingNodes } from '../serving-nodes.ts';

const health = z.object({
  status: z.enum(['ok', 'degraded']),
  reasons: z.array(z.string()),
  temporal: z.string(),
  mongodb: z.string(),
  nats: z.string(),
  liveNodes: z.number().int(),
  models: z.array(z.string()),
});

export const systemRoutes: FastifyPluginAsyncZod<{ deps: GatewayDeps }> = async (app, { deps }) => {
  /** Liveness plus each dependency's reachability; 503 when one is down, for load balancers. */
  const healthSchema = { tags: ['system'], summary: 'Liveness and dependencies', response: { 200: health, 503: health.describe('A dependency of the gateway is down') } };
  app.get('/health', { schema: healthSchema }, async (_request, reply) => {
    const check = async (fn: () => Promise<unknown>) => {
      try {
        await Promise.race([fn(), new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 2_000))]);
        return 'ok';
      } catch (err) {
        return `down: ${(err as Error).message}`;
      }
    };
    const [temporal, mongodb, nats] = await Promise.all([
      check(() => deps.temporal.connection.workflowService.getSystemInfo({})),
      check(() => deps.db.command({ ping: 1 })),
      check(() => deps.nc.flush()),
    ]);
    const ok = [temporal, mongodb, nats].every((s) => s === 'ok');
    // Nodes the router would send work to, not every heartbeat: a suspended node serves nothing.
    const serving = servingNodes(deps);
    const models = [...new Set(serving.flatMap((n) => n.heartbeat.models.map((m) => m.id)))].sort();
    const reasons = [
      ...Object.entries({ temporal, mongodb, nats }).filter(([, s]) => s !== 'ok').map(([name, s]) => `${name} is ${s}`),
      ...(serving.length ? [] : ['no node can serve any model now (none is live, or every live one is suspended or draining)']),
    ];
    // 503 only for the gateway's own dependencies: with no node it still answers (and says why).
    return reply.status(ok ? 200 : 503).send({ status: reasons.length ? 'degraded' : 'ok', reasons, temporal, mongodb, nats, liveNodes: serving.length, models });
  });

  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    deps.metrics.liveNodes.set(servingNodes(deps).length);
    return reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });

  /** What a node needs to register: the chain whose id goes into the EIP-712 domain. */
  const network = z.object({ chainId: z.number().int(), token: z.literal('GBT') });
  app.get('/v1/network', { schema: { tags: ['nodes'], summary: 'The chain nodes register for', response: { 200: network } } }, async () => ({ chainId: deps.chainId, token: 'GBT' as const }));

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
};
