import type { FastifyInstance } from 'fastify';
import type { GatewayDeps } from '../deps.ts';
import { ApiError } from '../errors.ts';

/** `POST /v1/keys`: a free API key. Limited per client address, so keys cannot be farmed to dodge quotas. */
export function keyRoutes(app: FastifyInstance, deps: GatewayDeps) {
  const issuedBy = new Map<string, number[]>();
  app.post(
    '/v1/keys',
    {
      schema: {
        tags: ['keys'],
        body: { type: ['object', 'null'], properties: { label: { type: 'string', maxLength: 64 } }, additionalProperties: false },
      },
    },
    async (request, reply) => {
      const now = (deps.now ?? Date.now)();
      const recent = (issuedBy.get(request.ip) ?? []).filter((t) => t > now - 3_600_000);
      if (recent.length >= deps.keysPerHourPerAddress) {
        throw new ApiError('rate_limit_exceeded', `At most ${deps.keysPerHourPerAddress} keys per hour from one address; try again later`);
      }
      const label = (request.body as { label?: string } | null)?.label;
      const issued = await deps.keys.issue(label);
      issuedBy.set(request.ip, [...recent, now]);
      return reply.status(201).send({ key: issued.key, id: issued.id, created_at: issued.createdAt, note: 'Keep this key: it is shown once and stored only as a hash.' });
    },
  );
}
