import type { FastifyRequest } from 'fastify';
import type { GatewayDeps } from './deps.ts';
import { ApiError } from './errors.ts';

/** The caller's key from `Authorization: Bearer gb-...`, checked against its rate limit. */
export async function authenticate(deps: GatewayDeps, request: FastifyRequest): Promise<{ id: string }> {
  const header = request.headers.authorization ?? '';
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match) throw new ApiError('invalid_api_key', 'No API key: send `Authorization: Bearer <key>`; get a free key with POST /v1/keys');
  const key = await deps.keys.authenticate(match[1]!);
  if (!key) throw new ApiError('invalid_api_key', 'Incorrect API key provided; get a free key with POST /v1/keys');
  const rate = await deps.keys.checkRate(key.id);
  if (!rate.ok) {
    throw new ApiError('rate_limit_exceeded', `Rate limit reached for this key; retry in ${rate.retryAfterSeconds} s`, null, { 'retry-after': String(rate.retryAfterSeconds) });
  }
  return { id: key.id };
}
