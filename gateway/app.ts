/**
 * Builds the gateway as a Fastify app without listening (tests use `inject()`); `server.ts`
 * listens and shuts down gracefully. Each resource's routes are a plugin, validated, typed and
 * documented from the same zod schemas (fastify-type-provider-zod).
 */
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { GatewayDeps } from './deps.ts';
import { answeredCodes, ApiError, errorHandler } from './errors.ts';
import { completionRoutes } from './routes/completions.ts';
import { answerUndeclaredMethods } from './methods.ts';
import { documentOptions } from './openapi.ts';
import { keyRoutes } from './routes/keys.ts';
import { modelRoutes } from './routes/models.ts';
import { nodeRoutes } from './routes/nodes.ts';
import { requestRoutes } from './routes/requests.ts';
import { RewardsViews } from './rewards-view.ts';
import { rewardRoutes } from './routes/rewards.ts';
import { systemRoutes } from './routes/system.ts';
import { gatewayLimits } from './schemas/completions.ts';
import { statusPages } from './status/plugin.ts';

/**
 * Longer than any path parameter's own bound (the longest, a model id, is 256), so that one too
 * long is refused by its schema, as a 400 naming it, rather than by the router.
 */
const maxPathParamChars = 512;

export async function buildApp(deps: GatewayDeps, options: { logger?: boolean } = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: gatewayLimits.bodyBytes,
    routerOptions: { maxParamLength: maxPathParamChars },
    // What the router refuses before any route is found (a malformed percent-encoding, an
    // over-long path parameter) answers like every other error, not in Fastify's own shape.
    frameworkErrors: (error, request, reply) => {
      void errorHandler(error, request, reply);
    },
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(swagger, documentOptions(app));
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
  const answerOtherMethods = answerUndeclaredMethods(app);
  for (const routes of [completionRoutes, modelRoutes, keyRoutes, nodeRoutes, requestRoutes, systemRoutes]) await app.register(routes, { deps });
  // The operator's rewards: one computation for the JSON and the operator's status page.
  const rewards = new RewardsViews(deps, app.log);
  await app.register(rewardRoutes, { deps, rewards });
  await app.register(statusPages, { deps, rewards, schedule: deps.epochSchedule });
  answerOtherMethods();
  return app;
}
