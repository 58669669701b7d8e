/**
 * What every route answers on failure, in OpenAI's error shape, and the statuses each may
 * answer: the OpenAPI document lists every status a route really answers (gateway/errors.ts).
 */
import { z } from 'zod';

export const errorBody = z
  .object({
    error: z.object({ message: z.string(), type: z.string(), param: z.string().nullable(), code: z.string() }),
  });

const why = {
  400: 'Invalid request: the body, a parameter or the query, named in `error.param`',
  401: 'No valid API key, or a signature that is forged, expired or already used',
  403: 'Signed by another key than the one the action needs',
  404: 'Not found',
  409: 'Conflicts with what the network already accepted',
  413: 'The body is larger than the limit',
  429: 'Rate limit or daily quota reached; `retry-after` says when to retry',
  500: 'An internal error, logged; no detail is shown',
  503: 'A dependency is unavailable, or no node can serve the request now; `retry-after` says when to retry',
  504: 'The network did not finish the request in time',
} as const;

export type ErrorStatus = keyof typeof why;

/**
 * The error responses of a route. Every route may answer 400 (a malformed query or body), 413,
 * 500 and 503 (MongoDB, NATS or Temporal away): those come with each; `more` adds its own.
 */
export function errorResponses(...more: ErrorStatus[]) {
  const statuses = [...new Set<ErrorStatus>([400, 413, 500, 503, ...more])];
  return Object.fromEntries(statuses.map((s) => [s, errorBody.describe(why[s])])) as Record<ErrorStatus, typeof errorBody>;
}

/** The bearer API key header, declared per route that needs one (see gateway/auth.ts). */
export const bearer = [{ bearer: [] }];
