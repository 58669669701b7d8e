/**
 * `POST /v1/chat/completions` and `POST /v1/completions`: authenticate, apply the key's limits,
 * admit (some live node must fit prompt + max_tokens), then start the request workflow and
 * relay its token stream as server-sent events, or wait for its result.
 */
import { randomBytes } from 'node:crypto';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { cancelSubject, tokenSubject, type ChatMessage, type Sampling } from '../../domain/inference.ts';
import { estimatePromptTokens } from '../../domain/routing.ts';
import { getModel } from '../../models/catalog.ts';
import { workflowIds } from '../../temporal.config.ts';
import { requestWorkflow, type RequestInput, type RequestOutcome } from '../../workflows/request.ts';
import { authenticate } from '../auth.ts';
import type { GatewayDeps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { TokenRelay } from '../relay.ts';
import { chatCompletionBody, completionBody, gatewayLimits, type ChatCompletionBody, type CompletionBody, type SamplingBody } from '../schemas/completions.ts';

type Kind = 'chat' | 'completion';

function samplingOf(body: SamplingBody): Sampling {
  const stop = body.stop == null ? undefined : typeof body.stop === 'string' ? [body.stop] : body.stop;
  return {
    temperature: body.temperature ?? 1,
    topP: body.top_p,
    topK: body.top_k,
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? gatewayLimits.defaultMaxTokens,
    stop: stop?.length ? stop : undefined,
    seed: body.seed,
  };
}

function messagesOf(body: ChatCompletionBody): ChatMessage[] {
  const messages = body.messages.map((m) => ({
    // OpenAI's newer 'developer' role is a system message to an open model's chat template.
    role: m.role === 'developer' ? ('system' as const) : m.role,
    content: typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join(''),
  }));
  const chars = messages.reduce((n, m) => n + m.content.length, 0);
  if (chars > gatewayLimits.contentChars) {
    throw new ApiError('invalid_body', `The messages hold ${chars} characters; the limit is ${gatewayLimits.contentChars}`, 'messages');
  }
  return messages;
}

/** Refuses before dispatch what no live node can take, with the numbers. */
function admit(deps: GatewayDeps, modelId: string, promptTokens: number, maxTokens: number): void {
  const model = getModel(modelId);
  if (promptTokens + maxTokens > model.contextLength) {
    throw new ApiError(
      'context_length_exceeded',
      `This model's maximum context is ${model.contextLength} tokens; the prompt (about ${promptTokens} tokens) plus max_tokens (${maxTokens}) exceeds it. Shorten the messages or lower max_tokens.`,
      'max_tokens',
    );
  }
  const live = deps.liveNodes.list(modelId).filter((n) => n.heartbeat.status === 'serving');
  if (!live.length) throw new ApiError('no_node_available', `No node is serving ${modelId} right now; try again shortly or pick another model from GET /v1/models`);
  const contexts = live.map((n) => n.heartbeat.models.find((m) => m.id === modelId)?.contextSize ?? 0);
  const largest = Math.max(...contexts);
  if (promptTokens + maxTokens > largest) {
    throw new ApiError(
      'no_node_available',
      `No live node can fit this request: the prompt (about ${promptTokens} tokens) plus max_tokens (${maxTokens}) needs ${promptTokens + maxTokens} tokens of context, and the largest available for ${modelId} is ${largest}. Lower max_tokens or shorten the prompt.`,
      'max_tokens',
    );
  }
  if (live.every((n) => n.heartbeat.freeSlots <= 0)) {
    // Busy nodes still take the request through the shared queue; it waits there, not here.
  }
}

function failureOf(err: unknown): ApiError {
  const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
  const inner = cause instanceof ApplicationFailure ? cause : cause?.cause instanceof ApplicationFailure ? cause.cause : undefined;
  if (inner?.type === 'NO_NODE_AVAILABLE') return new ApiError('no_node_available', inner.message);
  if (inner?.type === 'INFER_BAD_INPUT') return new ApiError('invalid_body', inner.message);
  return new ApiError('upstream_unavailable', 'The network could not complete this request; try again');
}

interface Prepared {
  requestId: string;
  input: RequestInput;
  keyId: string;
  reserved: number;
  stream: boolean;
  includeUsage: boolean;
  kind: Kind;
}

async function prepare(deps: GatewayDeps, request: FastifyRequest, kind: Kind): Promise<Prepared> {
  const key = await authenticate(deps, request);
  const body = request.body as ChatCompletionBody | CompletionBody;
  let modelId: string;
  try {
    modelId = getModel(body.model).id;
  } catch {
    throw new ApiError('model_not_found', `The model '${body.model}' does not exist; GET /v1/models lists the models being served`, 'model');
  }
  const sampling = samplingOf(body);
  const messages = kind === 'chat' ? messagesOf(body as ChatCompletionBody) : undefined;
  const prompt = kind === 'completion' ? (body as CompletionBody).prompt : undefined;
  const promptTokens = estimatePromptTokens(messages ? messages.map((m) => m.content).join('\n') : (prompt ?? '')) + (messages?.length ?? 0) * 8;
  admit(deps, modelId, promptTokens, sampling.maxTokens);

  const reserved = promptTokens + sampling.maxTokens;
  const quota = await deps.keys.reserveTokens(key.id, reserved);
  if (!quota.ok) {
    throw new ApiError(
      'insufficient_quota',
      `This request could use up to ${reserved} tokens, but the key's daily quota has ${quota.remaining} left; it resets at ${new Date(quota.resetAt).toISOString()}`,
    );
  }
  const requestId = randomBytes(12).toString('hex');
  return {
    requestId,
    keyId: key.id,
    reserved,
    stream: body.stream === true,
    includeUsage: body.stream_options?.include_usage === true,
    kind,
    input: { requestId, modelId, messages, prompt, sampling, subject: tokenSubject(requestId), promptTokensEstimate: promptTokens },
  };
}

function receipt(outcome: RequestOutcome) {
  return {
    request_id: outcome.result.requestId,
    node_id: outcome.result.nodeId,
    route_reason: outcome.route.chosen?.reason ?? 'served from the shared model queue',
    model_hash: outcome.result.modelHash,
  };
}

function choiceOf(kind: Kind, text: string, finishReason: string | null, delta: boolean) {
  if (kind === 'completion') return { index: 0, text, finish_reason: finishReason, logprobs: null };
  return delta
    ? { index: 0, delta: text ? { content: text } : {}, finish_reason: finishReason, logprobs: null }
    : { index: 0, message: { role: 'assistant', content: text }, finish_reason: finishReason, logprobs: null };
}

const usageOf = (o: RequestOutcome) => ({ prompt_tokens: o.result.usage.promptTokens, completion_tokens: o.result.usage.completionTokens, total_tokens: o.result.usage.totalTokens });

async function handle(deps: GatewayDeps, request: FastifyRequest, reply: FastifyReply, kind: Kind) {
  const p = await prepare(deps, request, kind);
  const started = performance.now();
  const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${p.requestId}`;
  const created = Math.floor((deps.now ?? Date.now)() / 1000);
  const object = kind === 'chat' ? 'chat.completion' : 'text_completion';
  const model = p.input.modelId;

  await deps.db.collection('requests').insertOne({ _id: p.requestId as never, keyId: p.keyId, modelId: model, kind, stream: p.stream, status: 'routing', createdAt: new Date() });
  // Subscribe before the workflow starts, as the design asks; the stream keeps chunks regardless.
  const relay = p.stream ? await TokenRelay.open(deps.js, p.input.subject) : undefined;
  let handleWf: WorkflowHandle<typeof requestWorkflow>;
  try {
    handleWf = await deps.temporal.workflow.start(requestWorkflow, { taskQueue: deps.controlTaskQueue, workflowId: workflowIds.request(p.requestId), args: [p.input] });
  } catch (err) {
    relay?.close();
    await deps.keys.settleTokens(p.keyId, p.reserved, 0);
    throw err;
  }

  let finished = false;
  // A client that goes away cancels the request: the node stops generating within a token.
  reply.raw.on('close', () => {
    if (finished) return;
    relay?.close();
    // Cancel the workflow first, then tell the node: were the node's "cancelled by the client"
    // failure to reach the workflow before the cancel request, the request would end as failed.
    void handleWf
      .cancel()
      .catch(() => {})
      .finally(() => deps.nc.publish(cancelSubject(p.requestId)));
    deps.metrics.requests.inc({ model, outcome: 'cancelled' });
  });
  const result = handleWf.result();
  result.catch(() => relay?.close()); // a failed workflow ends the relay, whatever was streamed
  const settle = (tokens: number) => deps.keys.settleTokens(p.keyId, p.reserved, tokens).catch((err: unknown) => request.log.warn({ err }, 'quota settle failed'));

  if (!relay) {
    let outcome: RequestOutcome;
    try {
      outcome = await result;
    } catch (err) {
      finished = true;
      await settle(0);
      deps.metrics.requests.inc({ model, outcome: 'failed' });
      throw failureOf(err);
    }
    finished = true;
    await settle(outcome.result.usage.totalTokens);
    deps.metrics.requests.inc({ model, outcome: 'ok' });
    deps.metrics.tokens.inc({ model }, outcome.result.usage.completionTokens);
    deps.metrics.latency.observe({ model, stream: 'false' }, (performance.now() - started) / 1000);
    const r = receipt(outcome);
    return reply
      .headers({ 'x-gitblock-request-id': r.request_id, 'x-gitblock-node': r.node_id, 'x-gitblock-route-reason': r.route_reason })
      .send({ id, object, created, model, system_fingerprint: `gguf-${r.model_hash.slice(0, 16)}`, choices: [choiceOf(kind, outcome.result.text, outcome.result.finishReason, false)], usage: usageOf(outcome), gitblock: r });
  }

  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-gitblock-request-id': p.requestId, 'x-accel-buffering': 'no' });
  const send = (payload: unknown) => raw.write(`data: ${JSON.stringify(payload)}\n\n`);
  const chunkObject = kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
  let sentNode = false;
  if (kind === 'chat') send({ id, object: chunkObject, created, model, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null, logprobs: null }] });
  for await (const chunk of relay.chunks()) {
    if (!chunk.text) continue;
    send({ id, object: chunkObject, created, model, choices: [choiceOf(kind, chunk.text, null, true)], ...(sentNode ? {} : { gitblock: { request_id: p.requestId, node_id: chunk.nodeId } }) });
    sentNode = true;
  }
  let outcome: RequestOutcome | undefined;
  try {
    outcome = await result;
  } catch (err) {
    if (raw.destroyed) return;
    const api = failureOf(err);
    raw.write(`data: ${JSON.stringify(api.body())}\n\n`);
  }
  finished = true;
  if (outcome) {
    send({ id, object: chunkObject, created, model, system_fingerprint: `gguf-${outcome.result.modelHash.slice(0, 16)}`, choices: [choiceOf(kind, '', outcome.result.finishReason, true)], gitblock: receipt(outcome) });
    if (p.includeUsage) send({ id, object: chunkObject, created, model, choices: [], usage: usageOf(outcome) });
    deps.metrics.requests.inc({ model, outcome: 'ok' });
    deps.metrics.tokens.inc({ model }, outcome.result.usage.completionTokens);
    deps.metrics.latency.observe({ model, stream: 'true' }, (performance.now() - started) / 1000);
  } else {
    deps.metrics.requests.inc({ model, outcome: 'failed' });
  }
  await settle(outcome?.result.usage.totalTokens ?? 0);
  raw.end('data: [DONE]\n\n');
}

export function completionRoutes(app: FastifyInstance, deps: GatewayDeps) {
  app.post('/v1/chat/completions', { schema: { body: chatCompletionBody, tags: ['inference'] } }, (req, reply) => handle(deps, req, reply, 'chat'));
  app.post('/v1/completions', { schema: { body: completionBody, tags: ['inference'] } }, (req, reply) => handle(deps, req, reply, 'completion'));
}
