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
import { BaseError, walk } from '../domain/errors.ts';
import { gatewayLimits } from './schemas/completions.ts';

/**
 * The one map: every code the API answers with, its HTTP status and OpenAI's error type (so
 * OpenAI clients classify, and back off on, these as they would there).
 */
const apiErrors = {
  invalid_body: [400, 'invalid_request_error'],
  /** A parameter this network does not honour: refused by name, never ignored. */
  unsupported_parameter: [400, 'invalid_request_error'],
  context_length_exceeded: [400, 'invalid_request_error'],
  invalid_api_key: [401, 'authentication_error'],
  registration_rejected: [401, 'authentication_error'],
  /** A signed operator action that is forged, expired or already used. */
  signature_rejected: [401, 'authentication_error'],
  forbidden: [403, 'invalid_request_error'],
  not_found: [404, 'invalid_request_error'],
  model_not_found: [404, 'invalid_request_error'],
  /** A known path asked with a method it does not answer; `Allow` lists those it does (methods.ts). */
  method_not_allowed: [405, 'invalid_request_error'],
  conflict: [409, 'invalid_request_error'],
  body_too_large: [413, 'invalid_request_error'],
  rate_limit_exceeded: [429, 'rate_limit_error'],
  insufficient_quota: [429, 'rate_limit_error'],
  internal_error: [500, 'server_error'],
  no_node_available: [503, 'server_error'],
  upstream_unavailable: [503, 'server_error'],
  upstream_timeout: [504, 'server_error'],
  /** The fallback provider (gateway/fallback.ts): unreachable or at its limits, answered wrongly, or too slow. */
  fallback_unavailable: [503, 'server_error'],
  fallback_error: [502, 'server_error'],
  fallback_timeout: [504, 'server_error'],
} as const satisfies Record<string, readonly [number, string]>;

export type ErrorCode = keyof typeof apiErrors;
export const errorCodes = Object.keys(apiErrors) as ErrorCode[];
export const statusOf = (code: ErrorCode): number => apiErrors[code][0];

/**
 * Other modules' errors (domain/errors.ts `BaseError`s), by their stable code, as the API code a
 * client sees, and the parameter at fault where the code names one. A coded error not listed
 * here is a bug, and answers 500.
 */
export const fromDomain: Readonly<Record<string, { code: ErrorCode; param?: string }>> = {
  KEY_INVALID: { code: 'invalid_api_key' },
  KEY_LABEL_INVALID: { code: 'invalid_body', param: 'label' },
  KEY_RATE_LIMITED: { code: 'rate_limit_exceeded' },
  KEY_QUOTA_EXCEEDED: { code: 'insufficient_quota' },
  // A registration: a bad body, a credential that is no good, or one already accepted.
  REGISTRATION_INVALID: { code: 'invalid_body' },
  REGISTRATION_TOO_LONG_LIVED: { code: 'invalid_body' },
  REGISTRATION_EXPIRED: { code: 'registration_rejected' },
  REGISTRATION_BAD_SIGNATURE: { code: 'registration_rejected' },
  REGISTRATION_REPLAYED: { code: 'conflict' },
  NODE_ID_TAKEN: { code: 'conflict' },
  // An operator action: forged, expired or replayed is an authentication failure, unlike a
  // replayed registration; its 409 means the network refuses a genuine request for now.
  ACTION_INVALID: { code: 'invalid_body' },
  ACTION_TOO_LONG_LIVED: { code: 'invalid_body' },
  ACTION_EXPIRED: { code: 'signature_rejected' },
  ACTION_BAD_SIGNATURE: { code: 'signature_rejected' },
  ACTION_REPLAYED: { code: 'signature_rejected' },
  MODEL_UNKNOWN: { code: 'model_not_found', param: 'model' },
};

export class ApiError extends BaseError<ErrorCode> {
  override name = 'ApiError';
  constructor(
    code: ErrorCode,
    message: string,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
    options: { cause?: unknown } = {},
  ) {
    super(message, { ...options, code });
  }

  get status(): number {
    return statusOf(this.code);
  }

  body() {
    return { error: { message: this.message, type: apiErrors[this.code][1], param: this.param, code: this.code } };
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

/**
 * A request the route's zod schema refused (fastify-type-provider-zod puts zod's issues in
 * `validation`), naming the parameter: an unknown one is `unsupported_parameter`, refused by
 * name rather than ignored; anything else is `invalid_body`, with what is wrong with it.
 */
function invalidInput(fe: FastifyError): ApiError {
  const first = fe.validation?.[0];
  const where = fe.validationContext === 'querystring' ? 'query' : fe.validationContext === 'params' ? 'path' : 'request body';
  const path = first?.instancePath ? first.instancePath.replace(/^\//, '').replace(/\//g, '.') : '';
  const keys = (first?.params as { keys?: unknown } | undefined)?.keys;
  if (first?.keyword === 'unrecognized_keys' && Array.isArray(keys) && typeof keys[0] === 'string') {
    const param = path ? `${path}.${keys[0]}` : keys[0];
    return new ApiError('unsupported_parameter', `Unsupported parameter: '${param}' is not supported by this network (README, "The API", lists what is)`, param);
  }
  return new ApiError('invalid_body', `Invalid ${where}: ${path ? `${path}: ` : ''}${first?.message ?? fe.message}`, path || null);
}

/** Fastify's own errors (schema validation, body limits, bad JSON, rate limits) in the same shape. */
export function toApiError(error: FastifyError | Error): ApiError {
  const api = walk(error, (e) => e instanceof ApiError);
  if (api) return api as ApiError;
  const coded = walk(error, (e) => e instanceof BaseError && fromDomain[(e as BaseError<string>).code] !== undefined) as (BaseError & { retryAfterSeconds?: unknown }) | undefined;
  if (coded) {
    const { code, param } = fromDomain[coded.code]!;
    const retry = typeof coded.retryAfterSeconds === 'number' ? { 'retry-after': String(coded.retryAfterSeconds) } : {};
    return new ApiError(code, coded.shortMessage, param ?? null, retry, { cause: error });
  }
  const away = unreachable(error);
  if (away) return unavailable(away);
  const fe = error as FastifyError;
  if (fe.validation) return invalidInput(fe);
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new ApiError('body_too_large', `Request body is larger than the limit of ${gatewayLimits.bodyBytes} bytes`);
  if (fe.code === 'FST_ERR_BAD_URL') return new ApiError('invalid_body', 'Invalid path: not a valid URL (a malformed percent-encoding)');
  if (fe.code === 'FST_ERR_MAX_PARAM_LENGTH') return new ApiError('invalid_body', 'Invalid path: a path parameter is longer than any this API takes');
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
