import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { GatewayDeps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { maxLabelLength } from '../keys/keys.ts';
import { errorResponses } from '../schemas/common.ts';

/**
 * A label as ApiKeys.issue takes it (keys.ts): no control character, and something besides the
 * white space it trims. Spelled out rather than with \s and \p{Cc}, so that any regex engine
 * reading the OpenAPI document reads the same set.
 */
const label = z
  .string()
  .max(maxLabelLength)
  .regex(
    // eslint-disable-next-line no-control-regex -- the control characters are what it refuses
    /^[^\u0000-\u001f\u007f-\u009f]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff][^\u0000-\u001f\u007f-\u009f]*$/,
    `label must be 1 to ${maxLabelLength} characters without control characters`,
  );

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
        // No body at all is a key without a label, as an empty object is.
        body: z.strictObject({ label: label.optional() }).nullish(),
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
