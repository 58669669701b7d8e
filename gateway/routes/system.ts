import type { FastifyInstance } from 'fastify';
import type { GatewayDeps } from '../deps.ts';

export function systemRoutes(app: FastifyInstance, deps: GatewayDeps) {
  /** Liveness plus each dependency's reachability; 503 when one is down, for load balancers. */
  app.get('/health', { schema: { tags: ['system'] } }, async (_request, reply) => {
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
    return reply.status(ok ? 200 : 503).send({ status: ok ? 'ok' : 'degraded', temporal, mongodb, nats, liveNodes: deps.liveNodes.list().length });
  });

  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    deps.metrics.liveNodes.set(deps.liveNodes.list().length);
    return reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });

  /** What a node needs to register: the chain whose id goes into the EIP-712 domain. */
  app.get('/v1/network', { schema: { tags: ['nodes'] } }, async () => ({ chainId: deps.chainId, token: 'GBT' }));

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
