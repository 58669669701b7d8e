/**
 * Every error the API returns, in OpenAI's shape: `{ error: { message, type, param, code } }`.
 * Stable codes map to HTTP status here and nowhere else; a 5xx never shows internals.
 */
import { JetStreamError } from '@nats-io/jetstream';
import { ClosedConnectionError, ConnectionError, DrainingConnectionError, NoRespondersError, RequestError, TimeoutError } from '@nats-io/transport-node';
import { ServiceError } from '@temporalio/client';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import {
  MongoClientClosedError,
  MongoNetworkError,
  MongoNotConnectedError,
  MongoOperationTimeoutError,
  MongoServerClosedError,
  MongoSystemError,
  MongoTopologyClosedError,
} from 'mongodb';

const statusOf = {
  invalid_body: 400,
  /** A parameter this network does not honour: refused by name, never ignored. */
  unsupported_parameter: 400,
  context_length_exceeded: 400,
  invalid_api_key: 401,
  registration_rejected: 401,
  /** A signed operator action that is forged, expired or already used. */
  signature_rejected: 401,
  forbidden: 403,
  not_found: 404,
  model_not_found: 404,
  conflict: 409,
  body_too_large: 413,
  rate_limit_exceeded: 429,
  insufficient_quota: 429,
  internal_error: 500,
  no_node_available: 503,
  upstream_unavailable: 503,
  upstream_timeout: 504,
  /** The fallback provider (gateway/fallback.ts): unreachable or at its limits, answered wrongly, or too slow. */
  fallback_unavailable: 503,
  fallback_error: 502,
  fallback_timeout: 504,
} as const;

export type ErrorCode = keyof typeof statusOf;

const typeOf = (status: number) =>
  status === 401 ? 'authentication_error' : status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error';

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  get status(): number {
    return statusOf[this.code];
  }

  body() {
    return { error: { message: this.message, type: typeOf(this.status), param: this.param, code: this.code } };
  }
}

/** What `Retry-After` says when a dependency is away: long enough for a restart or failover, short enough to matter. */
export const upstreamRetryAfterSeconds = 5;

/** The dependencies a client may be told are away; named in the message, nothing more. */
export type Upstream = 'MongoDB' | 'NATS' | 'Temporal';

/** The 503 a client sees when a dependency is away: retryable, and says when. */
export function unavailable(what: Upstream): ApiError {
  return new ApiError('upstream_unavailable', `The gateway cannot reach ${what} right now; retry in a few seconds`, null, {
    'retry-after': String(upstreamRetryAfterSeconds),
  });
}

/**
 * Which dependency an error says is unreachable, or undefined when it is something else (a
 * duplicate key, a refused argument, a bug), which stays what it is.
 */
export function unreachable(err: unknown): Upstream | undefined {
  if (
    err instanceof MongoNetworkError ||
    err instanceof MongoSystemError || // server selection
    err instanceof MongoOperationTimeoutError ||
    err instanceof MongoTopologyClosedError ||
    err instanceof MongoClientClosedError ||
    err instanceof MongoServerClosedError ||
    err instanceof MongoNotConnectedError
  ) {
    return 'MongoDB';
  }
  if (
    err instanceof ClosedConnectionError ||
    err instanceof DrainingConnectionError ||
    err instanceof ConnectionError ||
    err instanceof NoRespondersError ||
    err instanceof TimeoutError ||
    err instanceof RequestError ||
    err instanceof JetStreamError
  ) {
    return 'NATS';
  }
  // The Temporal client wraps the gRPC error: UNAVAILABLE (14) and DEADLINE_EXCEEDED (4) mean unreachable.
  if (err instanceof ServiceError) {
    const code = (err.cause as { code?: unknown } | undefined)?.code;
    if (code === 14 || code === 4) return 'Temporal';
  }
  return undefined;
}

/** Fastify's own errors (schema validation, body limits, bad JSON) in the same shape. */
export function toApiError(error: FastifyError | Error): ApiError {
  if (error instanceof ApiError) return error;
  const away = unreachable(error);
  if (away) return unavailable(away);
  const fe = error as FastifyError;
  if (fe.validation) {
    const first = fe.validation[0];
    const path = first?.instancePath ? first.instancePath.replace(/^\//, '').replace(/\//g, '.') : '';
    const extra = first?.keyword === 'additionalProperties' ? (first.params as { additionalProperty?: string }).additionalProperty : undefined;
    if (extra !== undefined) {
      const param = path ? `${path}.${extra}` : extra;
      return new ApiError('unsupported_parameter', `Unsupported parameter: '${param}' is not supported by this network (README, "The API", lists what is)`, param);
    }
    const param = path || ((first?.params as { missingProperty?: string })?.missingProperty ?? null);
    return new ApiError('invalid_body', `Invalid request body: ${fe.message.replace(/^body\/?/, '')}`, param);
  }
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new ApiError('body_too_large', `Request body is larger than the limit of ${fe.message.match(/\d+/)?.[0] ?? 'the server'} bytes`);
  if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new ApiError('invalid_body', 'Send the request body as application/json');
  if (fe.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || fe.statusCode === 400) return new ApiError('invalid_body', `Invalid request body: ${fe.message}`);
  if (fe.statusCode === 404) return new ApiError('not_found', fe.message);
  return new ApiError('internal_error', 'The gateway hit an internal error; it has been logged');
}

/** The error code a request was answered with, for metrics (see app.ts's onResponse hook). */
export const answeredCodes = new WeakMap<FastifyRequest, ErrorCode>();

export function errorHandler(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply) {
  const api = toApiError(error);
  answeredCodes.set(request, api.code);
  if (api.status >= 500 && api.code === 'internal_error') request.log.error({ err: error }, 'internal error');
  return reply.status(api.status).headers(api.headers).send(api.body());
}
