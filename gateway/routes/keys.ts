import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { GatewayDeps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { errorResponses } from '../schemas/common.ts';

const issuedKey = z.object({ key: z.string(), id: z.string(), created_at: z.date(), note: z.string() });

/**
 * `POST /v1/keys`: a free API key. Limited per client address, so keys cannot be farmed to
 * dodge quotas; a bad label (empty, too long, control characters) is a 400 naming `label`.
 */
export const keyRoutes: FastifyPluginAsyncZod<{ deps: GatewayDeps }> = async (app, { deps }) => {
  app.post(
    '/v1/keys',
    {
      schema: {
        tags: ['keys'],
        summary: 'Create a free API key',
        body: z.strictObject({ label: z.string().max(64).optional() }).nullish(),
        response: { 201: issuedKey, ...errorResponses(429) },
      },
      config: {
        rateLimit: {
          max: deps.keysPerHourPerAddress,
          timeWindow: 3_600_000,
          errorResponseBuilder: (_request, context) =>
            new ApiError('rate_limit_exceeded', `At most ${context.max} keys per hour from one address; try again in ${Math.ceil(context.ttl / 1000)} s`, null, {
              'retry-after': String(Math.ceil(context.ttl / 1000)),
            }),
        },
      },
    },
    async (request, reply) => {
      const issued = await deps.keys.issue(request.body?.label);
      return reply.status(201).send({ key: issued.key, id: issued.id, created_at: issued.createdAt, note: 'Keep this key: it is shown once and stored only as a hash.' });
    },
  );
};
