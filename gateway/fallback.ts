/**
 * The fallback provider (issue 11, the Phase-1 proxy): a request no node can serve is answered
 * by an upstream OpenAI-compatible provider instead of a 503, streamed or not. It is the
 * gateway's own doing, outside the network: no workflow, no operator accrues, no spot check.
 * The request record and receipt say `served_by: fallback`, the answer says it too
 * (`system_fingerprint: gitblock-fallback`, header `x-gitblock-served-by: fallback`), and the
 * key is charged the usage the upstream reports.
 *
 * The upstream is an outside input: its answers are validated (zod) and rebuilt before they are
 * relayed, its errors become this API's (502/503/504, `fallback_*`), and every call is bounded by
 * its own limits (concurrency, rate, time, max_tokens) so it never hangs a client.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Config } from '../config/env.ts';
import { limits } from '../domain/inference-schema.ts';
import type { GatewayDeps } from './deps.ts';
import { ApiError } from './errors.ts';
import { chargeFor } from './reservations.ts';
import { upstream } from './upstream.ts';
import type { ChatCompletionBody, CompletionBody } from './schemas/completions.ts';
import { store } from '../store/index.ts';

export const fallbackFingerprint = 'gitblock-fallback';
/** What the upstream may send at most in one answer (or one SSE event): a hostile one cannot fill memory. */
const maxUpstreamBytes = 4 * 1024 * 1024;

export interface FallbackOptions {
  /** Base URL, e.g. https://api.openai.com/v1. */
  url: string;
  apiKey?: string | undefined;
  /** Network model id → the upstream's name for it. */
  models: Record<string, string>;
  maxConcurrent: number;
  requestsPerMinute: number;
  timeoutMs: number;
  maxTokens: number;
}

/** The fallback the config asks for, or undefined when none is configured. */
export function fallbackOptionsOf(config: Config): FallbackOptions | undefined {
  if (!config.GITBLOCK_FALLBACK_URL) return undefined;
  return {
    url: config.GITBLOCK_FALLBACK_URL.replace(/\/+$/, ''),
    apiKey: config.GITBLOCK_FALLBACK_API_KEY,
    models: config.GITBLOCK_FALLBACK_MODELS,
    maxConcurrent: config.GITBLOCK_FALLBACK_MAX_CONCURRENT,
    requestsPerMinute: config.GITBLOCK_FALLBACK_REQUESTS_PER_MINUTE,
    timeoutMs: config.GITBLOCK_FALLBACK_TIMEOUT_MS,
    maxTokens: config.GITBLOCK_FALLBACK_MAX_TOKENS,
  };
}

// What is relayed of the upstream's answers: only these fields, validated; the rest is dropped.
const text = z.string().max(limits.contentChars);
const usageSchema = z.object({ prompt_tokens: z.number().int().min(0), completion_tokens: z.number().int().min(0), total_tokens: z.number().int().min(0) });
const finishSchema = z.enum(['stop', 'length', 'tool_calls', 'content_filter']).nullish();
const topLogprob = z.object({ token: z.string().max(1024), logprob: z.number(), bytes: z.array(z.number().int()).max(1024).nullish() });
const chatLogprobsSchema = z.object({ content: z.array(topLogprob.extend({ top_logprobs: z.array(topLogprob).max(limits.topLogprobs) })).max(limits.logprobEntries).nullable() }).nullish();
const completionLogprobsSchema = z
  .object({
    tokens: z.array(z.string().max(1024)).max(limits.logprobEntries),
    token_logprobs: z.array(z.number().nullable()).max(limits.logprobEntries),
    top_logprobs: z.array(z.record(z.string().max(1024), z.number()).nullable()).max(limits.logprobEntries).nullish(),
    text_offset: z.array(z.number().int()).max(limits.logprobEntries).nullish(),
  })
  .nullish();
const toolCallSchema = z.object({ id: z.string().max(256), type: z.literal('function'), function: z.object({ name: z.string().max(64), arguments: text }) });
const chatAnswerSchema = z.object({
  choices: z
    .array(
      z.object({
        message: z.object({ role: z.literal('assistant'), content: text.nullable(), tool_calls: z.array(toolCallSchema).max(limits.toolCalls).nullish() }),
        finish_reason: finishSchema,
        logprobs: chatLogprobsSchema,
      }),
    )
    .length(1),
  usage: usageSchema,
});
const completionAnswerSchema = z.object({ choices: z.array(z.object({ text, finish_reason: finishSchema, logprobs: completionLogprobsSchema })).length(1), usage: usageSchema });
const chatChunkSchema = z.object({
  choices: z
    .array(
      z.object({
        delta: z.object({
          role: z.literal('assistant').nullish(),
          content: text.nullish(),
          tool_calls: z
            .array(z.object({ index: z.number().int().min(0).max(limits.toolCalls), id: z.string().max(256).nullish(), type: z.literal('function').nullish(), function: z.object({ name: z.string().max(64).nullish(), arguments: text.nullish() }).nullish() }))
            .max(limits.toolCalls)
            .nullish(),
        }),
        finish_reason: finishSchema,
        logprobs: chatLogprobsSchema,
      }),
    )
    .max(1),
  usage: usageSchema.nullish(),
});
const completionChunkSchema = z.object({ choices: z.array(z.object({ text, finish_reason: finishSchema, logprobs: completionLogprobsSchema })).max(1), usage: usageSchema.nullish() });
type Usage = z.infer<typeof usageSchema>;

/** Drops what the upstream left absent or null, so the relayed shape is the one OpenAI's clients expect. */
const defined = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== null)) as Partial<T>;

/**
 * Runs the route's admission; with a fallback configured, a request no node can serve is not
 * refused but returns why, for the fallback to answer. Without one, behaviour is unchanged.
 */
export function unservedOrThrow(deps: GatewayDeps, admit: () => void): string | undefined {
  try {
    admit();
    return undefined;
  } catch (err) {
    if (deps.fallback && err instanceof ApiError && err.code === 'no_node_available') return err.message;
    throw err;
  }
}

/** The request as the gateway hands it over: what it reserved, and why no node took it. */
export interface FallbackRequest {
  requestId: string;
  keyId: string;
  kind: 'chat' | 'completion';
  modelId: string;
  stream: boolean;
  includeUsage: boolean;
  reserved: number;
  promptTokensEstimate: number;
  /** max_tokens as the gateway read it (its default when not given): asked of the upstream within its own cap. */
  maxTokens: number;
  /** Why the network could not serve it: kept in the record. */
  reason: string;
  /** Settles the key's reservation at this many tokens; only the first call counts. */
  settle(charged: number): Promise<void>;
}

/** A stream the route already answered 200 to (the network failed after it began): only its events are left. */
export interface OpenStream {
  /** A plain function (relayStream takes it off the object). */
  send: (payload: unknown) => void;
}

/** Where a fallback call stands: counted against the limits while it runs. */
export class FallbackProvider {
  private inFlight = 0;
  private started: number[] = [];

  constructor(
    readonly options: FallbackOptions,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes a place within the limits, or says why there is none; the returned function gives it back. */
  admit(): () => void {
    const now = this.now();
    this.started = this.started.filter((t) => now - t < 60_000);
    if (this.inFlight >= this.options.maxConcurrent || this.started.length >= this.options.requestsPerMinute) {
      const why = this.inFlight >= this.options.maxConcurrent ? `${this.options.maxConcurrent} requests at once` : `${this.options.requestsPerMinute} requests a minute`;
      throw new ApiError('fallback_unavailable', `No node is serving this model and the fallback provider is at its limit (${why}); retry shortly`, null, { 'retry-after': '5' });
    }
    this.inFlight++;
    this.started.push(now);
    let released = false;
    return () => {
      if (!released) this.inFlight--;
      released = true;
    };
  }

  /** The upstream body: the client's validated parameters, with the upstream's model name and this fallback's max_tokens. */
  bodyFor(req: FallbackRequest, body: ChatCompletionBody | CompletionBody): Record<string, unknown> {
    const { max_tokens: _max, max_completion_tokens: _maxCompletion, stream_options: _options, ...rest } = body as ChatCompletionBody & { stream_options?: unknown };
    return {
      ...rest,
      model: this.options.models[req.modelId] ?? req.modelId,
      max_tokens: Math.min(req.maxTokens, this.options.maxTokens),
      stream: req.stream,
      // The real usage comes in the stream's last event only when asked for: the key is charged by it.
      ...(req.stream ? { stream_options: { include_usage: true } } : {}),
    };
  }

  /** Calls the upstream; resolves once it answered 2xx, with its response, or throws the client's error. */
  async call(req: FallbackRequest, body: Record<string, unknown>, signal: AbortSignal): Promise<Response> {
    const path = req.kind === 'chat' ? '/chat/completions' : '/completions';
    let response: Response;
    try {
      response = await fetch(`${this.options.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: req.stream ? 'text/event-stream' : 'application/json', ...(this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {}) },
        body: JSON.stringify(body),
        signal,
      });
    } catch (err) {
      throw this.failure(err, signal);
    }
    if (response.ok) return response;
    const detail = await readBounded(response, signal, 2048).then(
      (t) => t.slice(0, 300),
      () => '',
    );
    if (response.status === 429 || response.status >= 500) {
      throw new ApiError('fallback_unavailable', `No node is serving this model and the fallback provider is unavailable (it answered ${response.status}); retry shortly`, null, { 'retry-after': '5' });
    }
    throw new ApiError('fallback_error', `No node is serving this model and the fallback provider refused the request (${response.status}${detail ? `: ${detail}` : ''})`);
  }

  /** The client's error for a failed call: too slow, unreachable, or an answer not in OpenAI's shape. */
  failure(err: unknown, signal: AbortSignal): ApiError {
    if (err instanceof ApiError) return err;
    if (signal.aborted && (signal.reason as Error | undefined)?.name === 'TimeoutError') {
      return new ApiError('fallback_timeout', `No node is serving this model and the fallback provider did not answer within ${this.options.timeoutMs} ms`);
    }
    if (err instanceof z.ZodError || err instanceof SyntaxError || err instanceof UpstreamAnswerError) {
      return new ApiError('fallback_error', 'No node is serving this model and the fallback provider gave an answer that is not a valid completion');
    }
    return new ApiError('fallback_unavailable', 'No node is serving this model and the fallback provider cannot be reached; retry shortly', null, { 'retry-after': '5' });
  }
}

class UpstreamAnswerError extends Error {
  override name = 'UpstreamAnswerError';
}

/** The body's text, refused past `max` bytes. */
async function readBounded(response: Response, signal: AbortSignal, max = maxUpstreamBytes): Promise<string> {
  let out = '';
  for await (const piece of sseText(response, signal)) {
    out += piece;
    if (out.length > max) throw new UpstreamAnswerError('upstream answer too large');
  }
  return out;
}

async function* sseText(response: Response, signal: AbortSignal): AsyncGenerator<string> {
  if (!response.body) return;
  const decoder = new TextDecoder();
  for await (const bytes of response.body as unknown as AsyncIterable<Uint8Array>) {
    if (signal.aborted) throw signal.reason;
    yield decoder.decode(bytes, { stream: true });
  }
  yield decoder.decode();
}

/** The JSON payloads of an SSE stream, up to `[DONE]`; an event past the size bound is refused. */
async function* sseEvents(response: Response, signal: AbortSignal): AsyncGenerator<unknown> {
  let buffer = '';
  for await (const piece of sseText(response, signal)) {
    buffer += piece;
    let end: RegExpExecArray | null;
    while ((end = /\r?\n\r?\n/.exec(buffer))) {
      const event = buffer.slice(0, end.index);
      buffer = buffer.slice(end.index + end[0].length);
      const data = event
        .split(/\r?\n/)
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart())
        .join('\n');
      if (!data) continue;
      if (data === '[DONE]') return;
      yield JSON.parse(data);
    }
    if (buffer.length > maxUpstreamBytes) throw new UpstreamAnswerError('upstream event too large');
  }
  throw new UpstreamAnswerError('the upstream stream ended without [DONE]');
}

/** What the request record says of a fallback answer: served by it, and why nothing accrued or was checked. */
const recordFields = (req: FallbackRequest) => ({
  servedBy: 'fallback',
  fallback: { reason: req.reason },
  accrual: { status: 'skipped', amount: '0', reason: 'served by the fallback provider' },
  verification: { status: 'not sampled', reason: 'served by the fallback provider' },
});

/** One fallback call in progress: its deadline, how it ends, and what its answers are marked with. */
interface Call {
  req: FallbackRequest;
  signal: AbortSignal;
  /** Aborted when the client goes away. */
  cancelled: AbortSignal;
  /** Answer chunks relayed so far: what a stream that breaks off is charged for. */
  relayed: number;
  head: { id: string; created: number; model: string; system_fingerprint: string };
  receipt: { request_id: string; served_by: 'fallback'; node_id: null };
  /** Settles, records and counts how the call ended; once. */
  end(status: 'completed' | 'failed' | 'cancelled', usage: Usage | undefined, finishReason: string | null | undefined, error?: ApiError): Promise<void>;
}

/**
 * Answers a request from the fallback provider, streamed or not, records it, settles its
 * reservation and counts it. `open` is the route's stream when it had already answered 200.
 */
export async function answerFromFallback(deps: GatewayDeps, fallback: FallbackProvider, request: FastifyRequest, reply: FastifyReply, req: FallbackRequest, open?: OpenStream) {
  const labels = { model: req.modelId, stream: String(req.stream) };
  const fail = (err: ApiError) => {
    deps.metrics.fallbackRequests.inc({ ...labels, outcome: 'failed' });
    deps.metrics.fallbackErrors.inc({ model: req.modelId, code: err.code });
    return err;
  };
  let release: () => void;
  try {
    release = fallback.admit();
  } catch (err) {
    throw fail(err as ApiError);
  }
  const started = performance.now();
  const cancel = new AbortController();
  let finished = false;
  reply.raw.on('close', () => {
    if (!finished) cancel.abort();
  });
  const record = recorder(deps, req);
  const call: Call = {
    req,
    signal: AbortSignal.any([AbortSignal.timeout(fallback.options.timeoutMs), cancel.signal]),
    cancelled: cancel.signal,
    relayed: 0,
    head: { id: `${req.kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${req.requestId}`, created: Math.floor((deps.now ?? Date.now)() / 1000), model: req.modelId, system_fingerprint: fallbackFingerprint },
    receipt: { request_id: req.requestId, served_by: 'fallback', node_id: null },
    async end(status, usage, finishReason, error) {
      finished = true;
      release();
      // The upstream's count, which may pass the gateway's estimate (another tokenizer); an outside
      // input all the same, so a report past twice the reservation is not believed beyond that.
      const charged =
        status === 'completed' && usage
          ? Math.min(usage.total_tokens, 2 * req.reserved)
          : chargeFor({ reserved: req.reserved, promptTokens: req.promptTokensEstimate }, status === 'failed' && !call.relayed ? { kind: 'failed' } : { kind: 'cancelled', relayedTokens: call.relayed });
      await req.settle(charged);
      const totalMs = performance.now() - started;
      await record(status, {
        ...(usage ? { usage: { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens, totalTokens: usage.total_tokens } } : {}),
        ...(finishReason ? { finishReason } : {}),
        ...(error ? { fallback: { reason: req.reason, error: error.message } } : {}),
        timings: { totalMs },
      }).catch((err: unknown) => request.log.warn({ err, requestId: req.requestId }, 'recording the fallback answer failed'));
      if (status === 'completed') deps.metrics.fallbackLatency.observe(labels, totalMs / 1000);
      if (status === 'failed' && error) fail(error);
      else deps.metrics.fallbackRequests.inc({ ...labels, outcome: status === 'completed' ? 'ok' : status });
    },
  };
  try {
    if (!open) await record('running', {});
    let response: Response;
    try {
      response = await fallback.call(req, fallback.bodyFor(req, request.body as ChatCompletionBody), call.signal);
    } catch (err) {
      const failure = fallback.failure(err, call.signal);
      await call.end(cancel.signal.aborted ? 'cancelled' : 'failed', undefined, undefined, failure);
      if (open) return void open.send(failure.body());
      throw failure;
    }
    if (!req.stream) return await relayAnswer(fallback, call, response, reply);
    await relayStream(fallback, call, response, open ?? { send: openStream(reply, req) });
  } finally {
    release();
    if (req.stream && !open && reply.raw.headersSent && !reply.raw.writableEnded && !reply.raw.destroyed) reply.raw.end('data: [DONE]\n\n');
  }
}

/** Writes the request record: one per request id, so the workflow's, when it ran and found no node, gains the fallback's answer. */
function recorder(deps: GatewayDeps, req: FallbackRequest) {
  const requests = store(deps.db).requests;
  return (status: string, fields: Record<string, unknown>) =>
    upstream('MongoDB', () =>
      requests.updateOne(
        { _id: req.requestId },
        { $set: { keyId: req.keyId, modelId: req.modelId, kind: req.kind, stream: req.stream, status, ...recordFields(req), ...fields, updatedAt: new Date() }, $unset: { error: '' }, $setOnInsert: { createdAt: new Date() } } as never,
        { upsert: true },
      ),
    );
}

/** Answers 200 as a server-sent event stream, marked; returns how to send an event. */
function openStream(reply: FastifyReply, req: FallbackRequest): (payload: unknown) => void {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-gitblock-request-id': req.requestId, 'x-gitblock-served-by': 'fallback', 'x-accel-buffering': 'no' });
  return (payload) => void (raw.destroyed || raw.write(`data: ${JSON.stringify(payload)}\n\n`));
}

/** The upstream's whole answer, validated, relayed in this network's shape. */
async function relayAnswer(fallback: FallbackProvider, call: Call, response: Response, reply: FastifyReply) {
  const { req } = call;
  let answer: z.infer<typeof chatAnswerSchema> | z.infer<typeof completionAnswerSchema>;
  try {
    const body: unknown = JSON.parse(await readBounded(response, call.signal));
    answer = (req.kind === 'chat' ? chatAnswerSchema : completionAnswerSchema).parse(body);
  } catch (err) {
    const failure = fallback.failure(err, call.signal);
    await call.end(call.cancelled.aborted ? 'cancelled' : 'failed', undefined, undefined, failure);
    throw failure;
  }
  const choice = answer.choices[0]!;
  await call.end('completed', answer.usage, choice.finish_reason);
  const message = 'message' in choice ? { message: defined(choice.message) } : {};
  return reply
    .headers({ 'x-gitblock-request-id': req.requestId, 'x-gitblock-served-by': 'fallback' })
    .send({ ...call.head, object: req.kind === 'chat' ? 'chat.completion' : 'text_completion', choices: [{ index: 0, ...defined(choice), ...message, logprobs: choice.logprobs ?? null }], usage: answer.usage, gitblock: call.receipt });
}

/** The upstream's stream, each event validated and relayed in this network's shape; an error ends it as the last event. */
async function relayStream(fallback: FallbackProvider, call: Call, response: Response, { send }: OpenStream) {
  const { req } = call;
  const object = req.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
  const schema = req.kind === 'chat' ? chatChunkSchema : completionChunkSchema;
  let usage: Usage | undefined;
  let finishReason: string | null | undefined;
  try {
    for await (const event of sseEvents(response, call.signal)) {
      const chunk = schema.parse(event);
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (!choice) continue;
      finishReason ??= choice.finish_reason;
      if ('delta' in choice ? choice.delta.content || choice.delta.tool_calls : choice.text) call.relayed++;
      const out = 'delta' in choice ? { ...choice, delta: defined(choice.delta) } : choice;
      send({ ...call.head, object, choices: [{ index: 0, ...out, finish_reason: choice.finish_reason ?? null, logprobs: choice.logprobs ?? null }], ...(finishReason ? { gitblock: call.receipt } : {}) });
    }
    if (!finishReason) throw new UpstreamAnswerError('the upstream stream ended without a finish_reason');
  } catch (err) {
    const failure = fallback.failure(err, call.signal);
    await call.end(call.cancelled.aborted ? 'cancelled' : 'failed', usage, finishReason, failure);
    return send(failure.body());
  }
  if (req.includeUsage && usage) send({ ...call.head, object, choices: [], usage });
  await call.end('completed', usage, finishReason); // before [DONE], where a client's stream ends
}
