/**
 * Builds the gateway as a Fastify app without listening (tests use `inject()`); `server.ts`
 * listens and shuts down gracefully.
 */
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance } from 'fastify';
import type { GatewayDeps } from './deps.ts';
import { answeredCodes, ApiError, errorHandler } from './errors.ts';
import { completionRoutes } from './routes/completions.ts';
import { keyRoutes } from './routes/keys.ts';
import { modelRoutes } from './routes/models.ts';
import { nodeRoutes } from './routes/nodes.ts';
import { requestRoutes } from './routes/requests.ts';
import { rewardRoutes } from './routes/rewards.ts';
import { systemRoutes } from './routes/system.ts';
import { gatewayLimits } from './schemas/completions.ts';
import { statusPages } from './status/plugin.ts';

export async function buildApp(deps: GatewayDeps, options: { logger?: boolean } = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: gatewayLimits.bodyBytes,
    // Request schemas are strict about what we use; unknown OpenAI fields are let through.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });
  await app.register(swagger, {
    openapi: {
      info: { title: 'GitBlock gateway', version: '0.1.0', description: 'Free OpenAI-compatible inference served by the GitBlock network' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });
  app.setErrorHandler(errorHandler);
  // Every outcome is counted, refusals too: a 429 or 503 storm must show on a dashboard.
  app.addHook('onResponse', async (request, reply) => {
    deps.metrics.responses.inc({ route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode), code: answeredCodes.get(request) ?? '' });
  });
  app.setNotFoundHandler((request, reply) => {
    const error = new ApiError('not_found', `No route ${request.method} ${request.url}`);
    answeredCodes.set(request, error.code);
    return reply.status(404).send(error.body());
  });
  completionRoutes(app, deps);
  modelRoutes(app, deps);
  keyRoutes(app, deps);
  nodeRoutes(app, deps);
  requestRoutes(app, deps);
  rewardRoutes(app, deps);
  systemRoutes(app, deps);
  await app.register(statusPages, { deps, schedule: deps.epochSchedule });
  return app;
}
