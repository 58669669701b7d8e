/**
 * Builds the gateway as a Fastify app without listening (tests use `inject()`); `server.ts`
 * listens and shuts down gracefully. Each resource's routes are a plugin, validated, typed and
 * documented from the same zod schemas (fastify-type-provider-zod).
 */
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { GatewayDeps } from './deps.ts';
import { answeredCodes, ApiError, errorHandler } from './errors.ts';
import { completionRoutes } from './routes/completions.ts';
import { keyRoutes } from './routes/keys.ts';
import { modelRoutes } from './routes/models.ts';
import { nodeRoutes } from './routes/nodes.ts';
import { requestRoutes } from './routes/requests.ts';
import { RewardsViews } from './rewards-view.ts';
import { rewardRoutes } from './routes/rewards.ts';
import { systemRoutes } from './routes/system.ts';
import { gatewayLimits } from './schemas/completions.ts';
import { statusPages } from './status/plugin.ts';

export async function buildApp(deps: GatewayDeps, options: { logger?: boolean } = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: options.logger ?? false, bodyLimit: gatewayLimits.bodyBytes });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'GitBlock gateway', version: '0.1.0', description: 'Free OpenAI-compatible inference served by the GitBlock network' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API key from POST /v1/keys' } } },
    },
    transform: jsonSchemaTransform,
  });
  // Per route where a limit fits (POST /v1/keys); per-key limits live in MongoDB, across gateways.
  await app.register(rateLimit, { global: false });
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
  for (const routes of [completionRoutes, modelRoutes, keyRoutes, nodeRoutes, requestRoutes, systemRoutes]) await app.register(routes, { deps });
  // The operator's rewards: one computation for the JSON and the operator's status page.
  const rewards = new RewardsViews(deps, app.log);
  await app.register(rewardRoutes, { deps, rewards });
  await app.register(statusPages, { deps, rewards, schedule: deps.epochSchedule });
  return app;
}
