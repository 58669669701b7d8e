/**
 * Authentication as a hook: a route plugin that needs an API key adds `requireKey(deps)` as a
 * preHandler, and its handlers read the caller's key with `keyOf(request)`.
 */
import type { FastifyRequest } from 'fastify';
import type { GatewayDeps } from './deps.ts';
import { ApiError } from './errors.ts';
import { upstream } from './upstream.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller's key, set by `requireKey`'s hook. */
    apiKey?: { id: string };
  }
}

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

/**
 * The preHandler hook of routes that need a key. It runs after validation (a malformed request
 * is refused as such, key or not), and MongoDB being away is a 503, not a hang (upstream.ts).
 */
export function requireKey(deps: GatewayDeps) {
  return async (request: FastifyRequest) => {
    request.apiKey = await upstream('MongoDB', () => authenticate(deps, request));
  };
}

/** The key `requireKey` authenticated; a route without the hook has none, which is a bug. */
export function keyOf(request: FastifyRequest): { id: string } {
  if (!request.apiKey) throw new Error(`route ${request.routeOptions.url ?? ''} reads the API key without the requireKey hook`);
  return request.apiKey;
}
