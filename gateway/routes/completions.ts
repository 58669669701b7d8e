/**
 * `POST /v1/chat/completions` and `POST /v1/completions`: authenticate, apply the key's limits,
 * admit (some live node must fit prompt + max_tokens), then start the request workflow and
 * relay its token stream as server-sent events, or wait for its result.
 */
import { randomBytes } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, TimeoutFailure } from '@temporalio/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { z } from 'zod';
import { walk } from '../../domain/errors.ts';
import { inferErrors, requestErrors } from '../../domain/failures.ts';
import { cancelSubject, tokenSubject } from '../../domain/inference.ts';
import { estimateChatPromptTokens, estimatePromptTokens } from '../../domain/routing.ts';
import { getModel } from '../../models/catalog.ts';
import { timeouts, workflowIds } from '../../temporal.config.ts';
import { answerUpdate, requestWorkflow, type RequestAnswer as RequestOutcome, type RequestInput } from '../../workflows/request.ts';
import { keyOf, requireKey } from '../auth.ts';
import type { RouteDecision } from '../../domain/routing.ts';
import type { GatewayDeps } from '../deps.ts';
import { ApiError, unavailable, upstreamRetryAfterSeconds } from '../errors.ts';
import { TokenRelay } from '../relay.ts';
import { answerFromFallback, unservedOrThrow, type OpenStream } from '../fallback.ts';
import { chargeFor } from '../reservations.ts';
import { upstream, upstreamDeadlineMs } from '../upstream.ts';
import { servingNodes } from '../serving-nodes.ts';
import { chatLogprobs, completionLogprobs } from '../logprobs.ts';
import { logprobsOf, messagesOf, samplingOf, toolingOf } from '../openai-request.ts';
import { bearer, errorResponses } from '../schemas/common.ts';
import { chatCompletionBody, chatCompletionResponse, completionBody, completionResponse, eventStream, type ChatCompletionBody, type CompletionBody } from '../schemas/completions.ts';
import { store } from '../../store/index.ts';

type Kind = 'chat' | 'completion';

/**
 * The 503 for "no node can serve this now": like a dependency being away, it passes (a node
 * heartbeats back within seconds of a restart, or of NATS coming back), so it says when to
 * retry, as the API documents for every 503.
 */
function noNode(message: string, param: string | null = null): ApiError {
  return new ApiError('no_node_available', message, param, { 'retry-after': String(upstreamRetryAfterSeconds) });
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
  const live = servingNodes(deps, modelId);
  if (!live.length) throw noNode(`No node is serving ${modelId} right now; try again shortly or pick another model from GET /v1/models`);
  const contexts = live.map((n) => n.heartbeat.models.find((m) => m.id === modelId)?.contextSize ?? 0);
  const largest = Math.max(...contexts);
  if (promptTokens + maxTokens > largest) {
    throw noNode(
      `No live node can fit this request: the prompt (about ${promptTokens} tokens) plus max_tokens (${maxTokens}) needs ${promptTokens + maxTokens} tokens of context, and the largest available for ${modelId} is ${largest}. Lower max_tokens or shorten the prompt.`,
      'max_tokens',
    );
  }
  // Nodes without a free slot are no refusal: the request waits on the model's shared queue.
}

/**
 * A request workflow that timed out ran no code to record its end: the record would say
 * 'running' for ever. The gateway, which saw the timeout, records it.
 */
async function recordTimeout(deps: GatewayDeps, requestId: string, err: unknown): Promise<void> {
  if (!(err instanceof WorkflowFailedError && err.cause instanceof TimeoutFailure)) return;
  await store(deps.db).requests
    .updateOne({ _id: requestId }, { $set: { status: 'failed', error: `timed out after ${timeouts.requestExecution}`, updatedAt: new Date() } })
    .catch(() => {});
}

function failureOf(err: unknown): ApiError {
  const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
  // The workflow's own execution timeout (activity timeouts arrive wrapped in an ActivityFailure).
  if (cause instanceof TimeoutFailure) {
    return new ApiError('upstream_timeout', `The network did not finish this request in time (${timeouts.requestExecution}); try again, or lower max_tokens`);
  }
  // The workflow's own failure, or an activity's inside an ActivityFailure: the first on the chain.
  const inner = walk(cause, (e) => e instanceof ApplicationFailure) as ApplicationFailure | undefined;
  if (inner?.type === inferErrors.noNode) return noNode(inner.message);
  if (inner?.type === requestErrors.startedTooLate) return unavailable('Temporal');
  if (inner?.type === inferErrors.badInput) {
    // The node names the parameter it could not honour (a token id its model lacks, ...).
    const param = (inner.details?.[0] as { param?: unknown } | undefined)?.param;
    return new ApiError('invalid_body', inner.message, typeof param === 'string' ? param : null);
  }
  return new ApiError('upstream_unavailable', 'The network could not complete this request; try again', null, { 'retry-after': String(upstreamRetryAfterSeconds) });
}

interface Prepared {
  requestId: string;
  input: RequestInput;
  keyId: string;
  reserved: number;
  /** The UTC day the reservation was charged to; settled on that day, even past midnight. */
  day: string;
  stream: boolean;
  includeUsage: boolean;
  kind: Kind;
  /** parallel_tool_calls: false keeps an answer's first call only. */
  parallelToolCalls: boolean;
  /** Why no node can serve it, when the fallback provider is to (fallback.ts). */
  unserved: string | undefined;
}

async function prepare(deps: GatewayDeps, request: FastifyRequest, body: ChatCompletionBody | CompletionBody, kind: Kind, requestId: string): Promise<Prepared> {
  const key = keyOf(request);
  let modelId: string;
  try {
    modelId = getModel(body.model).id;
  } catch {
    throw new ApiError('model_not_found', `The model '${body.model}' does not exist; GET /v1/models lists the models being served`, 'model');
  }
  const sampling = samplingOf(body);
  const logprobs = logprobsOf(body, kind, sampling.maxTokens);
  const messages = kind === 'chat' ? messagesOf(body as ChatCompletionBody) : undefined;
  const tools = kind === 'chat' ? toolingOf(body as ChatCompletionBody).tools : undefined;
  const prompt = kind === 'completion' ? (body as CompletionBody).prompt : undefined;
  const promptTokens =
    (messages ? estimateChatPromptTokens(messages.map((m) => ({ content: m.content + (m.toolCalls ? JSON.stringify(m.toolCalls) : '') }))) : estimatePromptTokens(prompt ?? '')) +
    // The template documents the tools and how to call them: a few hundred tokens beyond their JSON.
    (tools ? estimatePromptTokens(JSON.stringify(tools)) + 300 : 0);
  const unserved = unservedOrThrow(deps, () => admit(deps, modelId, promptTokens, sampling.maxTokens));

  const reserved = promptTokens + sampling.maxTokens;
  // Carries the request id, so that were this gateway to die (or the deadline to pass while the
  // write still lands) the reconciler finds the reservation and settles it (reservations.ts).
  const quota = await upstream('MongoDB', () => deps.keys.reserveTokens(key.id, reserved, { requestId, promptTokens }));
  if (!quota.ok) {
    throw new ApiError(
      'insufficient_quota',
      `This request could use up to ${reserved} tokens, but the key's daily quota has ${quota.remaining} left; it resets at ${new Date(quota.resetAt).toISOString()}`,
    );
  }
  return {
    requestId,
    keyId: key.id,
    reserved,
    day: quota.day,
    stream: body.stream === true,
    includeUsage: body.stream_options?.include_usage === true,
    kind,
    parallelToolCalls: (body as ChatCompletionBody).parallel_tool_calls !== false,
    unserved,
    input: { requestId, modelId, messages, prompt, sampling, subject: tokenSubject(requestId), promptTokensEstimate: promptTokens, ...(logprobs ? { logprobs } : {}), ...(tools ? { tools } : {}) },
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

function choiceOf(kind: Kind, text: string, finishReason: string | null, delta: boolean, logprobs: unknown = null) {
  if (kind === 'completion') return { index: 0, text, finish_reason: finishReason, logprobs };
  return delta
    ? { index: 0, delta: text ? { content: text } : {}, finish_reason: finishReason, logprobs }
    : { index: 0, message: { role: 'assistant', content: text }, finish_reason: finishReason, logprobs };
}

/** The answer's tool calls in OpenAI's shape, with ids of this request; none when it made none. */
function toolCallsOf(p: Prepared, outcome: RequestOutcome) {
  const calls = outcome.result.toolCalls ?? [];
  return (p.parallelToolCalls ? calls : calls.slice(0, 1)).map((c, i) => ({ id: `call_${p.requestId}_${i}`, type: 'function' as const, function: { name: c.name, arguments: c.arguments } }));
}

/** A chat answer that made calls finished to make them, unless max_tokens cut it. */
const finishOf = (outcome: RequestOutcome, calls: unknown[]) => (calls.length && outcome.result.finishReason === 'stop' ? 'tool_calls' : outcome.result.finishReason);

/** The non-streamed choice: with tool calls, the content before them (null if none) and the calls. */
function answerChoice(p: Prepared, outcome: RequestOutcome) {
  const choice = choiceOf(p.kind, outcome.result.text, outcome.result.finishReason, false, logprobsFor(p, outcome));
  const calls = toolCallsOf(p, outcome);
  if (p.kind !== 'chat' || !calls.length) return choice;
  const text = outcome.result.text;
  return { ...choice, message: { role: 'assistant', content: text.trim() ? text : null, tool_calls: calls }, finish_reason: finishOf(outcome, calls) };
}

/** The answer's log-probabilities in the endpoint's shape, or null when none were asked. */
function logprobsFor(p: Prepared, outcome: RequestOutcome) {
  const entries = outcome.result.logprobs;
  if (!p.input.logprobs || !entries) return null;
  return p.kind === 'chat' ? chatLogprobs(entries) : completionLogprobs(entries, p.input.logprobs.top > 0);
}

const usageOf = (o: RequestOutcome) => ({ prompt_tokens: o.result.usage.promptTokens, completion_tokens: o.result.usage.completionTokens, total_tokens: o.result.usage.totalTokens });

/** How much sooner than the gateway stops waiting a request's start must reach Temporal (see `startBy`). */
const startSkewMarginMs = 1_000;

/** How long the relay may still read after the workflow succeeded, before it is closed anyway. */
const relayDrainMs = 5_000;

/** What the client has had of a request so far: what a cancelled request is charged for. */
interface Progress {
  cancelled: boolean;
  relayedTokens: number;
}

/** Settles the key's reservation for the request's outcome, or for none; only the first call counts. */
type Settle = (outcome?: RequestOutcome) => Promise<void>;

/** Hands a request no node could serve to the fallback provider; `open` when the stream was already answered 200. */
type ToFallback = (reason: string, open?: OpenStream) => Promise<unknown>;

async function handle(deps: GatewayDeps, request: FastifyRequest, reply: FastifyReply, kind: Kind, body: ChatCompletionBody | CompletionBody) {
  const requestId = String(reply.getHeader(requestIdHeader));
  const p = await prepare(deps, request, body, kind, requestId);
  // From here the key's quota holds p.reserved. It is settled exactly once, on every path: the
  // answering paths settle before they answer (so the client's next request sees the refund),
  // and the finally settles whatever else happened. Should this process die first, or MongoDB
  // be away now, the reconciler settles it from the workflow's end (reservations.ts).
  const progress: Progress = { cancelled: false, relayedTokens: 0 };
  const reservation = { keyId: p.keyId, requestId: p.requestId, reserved: p.reserved, day: p.day, promptTokens: p.input.promptTokensEstimate };
  const charge = (outcome?: RequestOutcome) =>
    chargeFor(reservation, outcome ? { kind: 'completed', outcome } : progress.cancelled ? { kind: 'cancelled', relayedTokens: progress.relayedTokens } : { kind: 'failed' });
  let settled: Promise<void> | undefined;
  const settleAt = (charged: number) =>
    (settled ??= upstream('MongoDB', () => deps.keys.settleReservation(reservation, charged)).then(
      () => {},
      (err: unknown) => request.log.warn({ err, keyId: p.keyId, requestId: p.requestId }, 'quota settle failed; the reconciler will settle it'),
    ));
  const settle: Settle = (outcome) => settleAt(charge(outcome));
  const fallback = deps.fallback;
  const toFallback: ToFallback | undefined = fallback
    ? (reason, open) => answerFromFallback(deps, fallback, request, reply, { ...reservation, kind, modelId: p.input.modelId, stream: p.stream, includeUsage: p.includeUsage, promptTokensEstimate: p.input.promptTokensEstimate, maxTokens: p.input.sampling.maxTokens, reason, settle: settleAt }, open)
    : undefined;
  try {
    if (toFallback && p.unserved !== undefined) return await toFallback(p.unserved);
    return await serve(deps, request, reply, kind, p, settle, progress, toFallback);
  } finally {
    deps.router?.release(p.requestId);
    await settle();
  }
}

/**
 * Everything a request needs before its workflow may start, each bounded (upstream.ts): NATS
 * reachable (the answer streams through it, and the nodes publish to it), the request record,
 * and for a stream its relay, subscribed before the workflow starts as the design asks. The three
 * are independent and go out together: one round trip's wait before the start, not three in a
 * row. A failure here leaves no record behind in `routing`: it is marked failed once all three
 * have landed, so a late insert cannot revive it.
 */
async function open(deps: GatewayDeps, p: Prepared): Promise<TokenRelay | undefined> {
  const requests = store(deps.db).requests;
  const [reachable, recorded, relay] = await Promise.allSettled([
    upstream('NATS', () => deps.nc.flush()),
    // An upsert that leaves a record already there as it is: whichever of this and the
    // workflow's own record lands first, the outcome is not overwritten by 'routing'.
    upstream('MongoDB', () =>
      requests.updateOne(
        { _id: p.requestId },
        { $set: { keyId: p.keyId, modelId: p.input.modelId, kind: p.kind, stream: p.stream }, $setOnInsert: { status: 'routing', createdAt: new Date() } },
        { upsert: true },
      ),
    ),
    p.stream ? upstream('NATS', () => TokenRelay.open(deps.js, p.input.subject)) : Promise.resolve(undefined),
  ]);
  const failed = [reachable, recorded, relay].find((r) => r.status === 'rejected');
  if (!failed) return (relay as PromiseFulfilledResult<TokenRelay | undefined>).value;
  if (relay.status === 'fulfilled') relay.value?.close();
  if (recorded.status === 'fulfilled') await markFailed(deps, p.requestId, failed.reason);
  throw failed.reason;
}

/** A request that never started ends as failed, with why; best effort (MongoDB may be what is away). */
async function markFailed(deps: GatewayDeps, requestId: string, err: unknown): Promise<void> {
  const error = err instanceof ApiError ? err.message : 'the gateway could not start it';
  await upstream('MongoDB', () =>
    store(deps.db).requests.updateOne({ _id: requestId, status: 'routing' }, { $set: { status: 'failed', error, updatedAt: new Date() } }),
  ).catch(() => {});
}

/** One request being served: what every part of its answer repeats, and whether it has finished. */
interface Serving {
  deps: GatewayDeps;
  request: FastifyRequest;
  reply: FastifyReply;
  kind: Kind;
  p: Prepared;
  settle: Settle;
  progress: Progress;
  toFallback: ToFallback | undefined;
  started: number;
  id: string;
  created: number;
  model: string;
  /** The outcome is in: the client's connection closing after that cancels nothing. */
  finished: boolean;
}

type Send = (payload: unknown) => void;

async function startWorkflow(deps: GatewayDeps, p: Prepared, route: RouteDecision | undefined) {
  // Real time, not deps.now: it is compared with the time Temporal accepts the start. A start
  // accepted later than this ends unserved (the client is answered 503 by then, or about to
  // be); a second under the deadline, for clock skew and the answer's way back.
  const startBy = Date.now() + upstreamDeadlineMs - startSkewMarginMs;
  return upstream('Temporal', () =>
    deps.temporal.workflow.start(requestWorkflow, {
      taskQueue: deps.controlTaskQueue,
      workflowId: workflowIds.request(p.requestId),
      args: [{ ...p.input, startBy, ...(route ? { route } : {}) }],
      workflowExecutionTimeout: timeouts.requestExecution,
      ...(deps.eagerStart ? { requestEagerStart: true } : {}),
    }),
  ).catch(async (err: unknown) => {
    // Were the start to land after the deadline, the workflow ends itself unserved (startBy).
    await markFailed(deps, p.requestId, err);
    throw err;
  });
}

type RequestHandle = Awaited<ReturnType<typeof startWorkflow>>;

/** A client that goes away cancels the request: the node stops generating within a token. */
function onClientGone(s: Serving, relay: TokenRelay | undefined, handleWf: RequestHandle): void {
  if (s.finished) return;
  s.progress.cancelled = true;
  relay?.close();
  // Cancel the workflow first, then tell the node: were the node's "cancelled by the client"
  // failure to reach the workflow before the cancel request, the request would end as failed.
  void handleWf
    .cancel()
    .catch(() => {})
    .finally(() => {
      try {
        s.deps.nc.publish(cancelSubject(s.p.requestId));
      } catch {
        // NATS away: the workflow's cancellation still reaches the node through its heartbeat.
      }
    });
  s.deps.metrics.requests.inc({ model: s.model, outcome: 'cancelled' });
}

/** Counts a served request, its tokens and its latency. */
function countServed(s: Serving, outcome: RequestOutcome, stream: boolean): void {
  const { metrics } = s.deps;
  metrics.requests.inc({ model: s.model, outcome: 'ok' });
  metrics.tokens.inc({ model: s.model }, outcome.result.usage.completionTokens);
  metrics.latency.observe({ model: s.model, stream: String(stream) }, (performance.now() - s.started) / 1000);
}

/** The answer as one JSON body, once the workflow has it. */
async function answerJson(s: Serving, result: Promise<RequestOutcome>) {
  const { deps, p, reply, progress, toFallback } = s;
  let outcome: RequestOutcome;
  try {
    outcome = await result;
  } catch (err) {
    s.finished = true;
    if (!progress.cancelled) deps.metrics.requests.inc({ model: s.model, outcome: 'failed' });
    await recordTimeout(deps, p.requestId, err);
    const failure = failureOf(err);
    if (toFallback && failure.code === 'no_node_available' && !progress.cancelled) return toFallback(failure.message);
    throw failure;
  }
  s.finished = true;
  await s.settle(outcome);
  countServed(s, outcome, false);
  const r = receipt(outcome);
  const object = s.kind === 'chat' ? 'chat.completion' : 'text_completion';
  return reply
    .headers({ 'x-gitblock-request-id': r.request_id, 'x-gitblock-node': r.node_id, 'x-gitblock-route-reason': r.route_reason })
    .send({ id: s.id, object, created: s.created, model: s.model, system_fingerprint: `gguf-${r.model_hash.slice(0, 16)}`, choices: [answerChoice(p, outcome)], usage: usageOf(outcome), gitblock: r });
}

/** Relays the node's chunks as they come; the text relayed. */
async function relayChunks(s: Serving, relay: TokenRelay, send: Send, chunk: (fields: object) => object): Promise<string> {
  let sentNode = false;
  if (s.kind === 'chat') send(chunk({ choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null, logprobs: null }] }));
  let relayedText = '';
  for await (const c of relay.chunks()) {
    s.progress.relayedTokens += c.tokens.length;
    if (!c.text) continue;
    relayedText += c.text;
    send(chunk({ choices: [choiceOf(s.kind, c.text, null, true)], ...(sentNode ? {} : { gitblock: { request_id: s.p.requestId, node_id: c.nodeId } }) }));
    sentNode = true;
  }
  if (relay.malformed) s.request.log.warn({ requestId: s.p.requestId, malformed: relay.malformed }, 'ignored malformed messages on the token subject');
  return relayedText;
}

/** The stream's last chunks once the outcome is in: log-probabilities, withheld text, tool calls, finish, usage. */
async function finishStream(s: Serving, outcome: RequestOutcome, relayedText: string, send: Send, chunk: (fields: object) => object): Promise<void> {
  const { p, kind } = s;
  // Tokens stream through the edge as text; their log-probabilities come with the result,
  // so a stream carries them all in one chunk before the last.
  const logprobs = logprobsFor(p, outcome);
  if (logprobs) send(chunk({ choices: [choiceOf(kind, '', null, true, logprobs)] }));
  // Text the node withheld as a possible tool call that turned out not to be one.
  const tail = outcome.result.text.startsWith(relayedText) ? outcome.result.text.slice(relayedText.length) : '';
  if (tail) send(chunk({ choices: [choiceOf(kind, tail, null, true)] }));
  const calls = kind === 'chat' ? toolCallsOf(p, outcome) : [];
  calls.forEach((call, index) => send(chunk({ choices: [{ index: 0, delta: { tool_calls: [{ index, ...call }] }, finish_reason: null, logprobs: null }] })));
  send(chunk({ system_fingerprint: `gguf-${outcome.result.modelHash.slice(0, 16)}`, choices: [choiceOf(kind, '', finishOf(outcome, calls), true)], gitblock: receipt(outcome) }));
  if (p.includeUsage) send(chunk({ choices: [], usage: usageOf(outcome) }));
  countServed(s, outcome, true);
  await s.settle(outcome); // before [DONE], which is where a client's stream ends
}

/** The answer as server-sent events, relayed from the node as it generates. */
async function streamAnswer(s: Serving, relay: TokenRelay, result: Promise<RequestOutcome>): Promise<void> {
  const { deps, p, progress, toFallback } = s;
  s.reply.hijack();
  const raw = s.reply.raw;
  // No Connection header of our own: Node keeps the socket alive unless the client said
  // `Connection: close`, and then closes it right after the last chunk. Forcing keep-alive
  // held such a socket open until the keep-alive timeout, long after [DONE].
  raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-gitblock-request-id': p.requestId, 'x-accel-buffering': 'no' });
  const send: Send = (payload) => void (raw.destroyed || raw.write(`data: ${JSON.stringify(payload)}\n\n`));
  const object = s.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
  // Key order as OpenAI sends it: id, object, created, model, then the chunk's own fields.
  const chunk = (fields: object) => ({ id: s.id, object, created: s.created, model: s.model, ...fields });
  // Past the hijack no error handler can answer: every path below ends the response itself.
  try {
    const relayedText = await relayChunks(s, relay, send, chunk);
    let outcome: RequestOutcome | undefined;
    try {
      outcome = await result;
    } catch (err) {
      s.finished = true;
      await recordTimeout(deps, p.requestId, err);
      const failure = failureOf(err);
      // Only an answer not yet begun: the fallback's would not continue a node's.
      if (toFallback && failure.code === 'no_node_available' && !progress.relayedTokens && !progress.cancelled) await toFallback(failure.message, { send });
      else {
        await s.settle(); // before the error, on which a client's stream ends
        send(failure.body());
      }
    }
    s.finished = true;
    if (outcome) await finishStream(s, outcome, relayedText, send, chunk);
    else if (!progress.cancelled) deps.metrics.requests.inc({ model: s.model, outcome: 'failed' });
  } catch (err) {
    // Not finished: ending the response below then cancels the workflow, which nobody reads.
    s.request.log.error({ err, requestId: p.requestId }, 'relaying the token stream failed');
    send(new ApiError('internal_error', 'The gateway hit an internal error; it has been logged').body());
  } finally {
    if (!raw.writableEnded && !raw.destroyed) raw.end('data: [DONE]\n\n');
  }
}

async function serve(deps: GatewayDeps, request: FastifyRequest, reply: FastifyReply, kind: Kind, p: Prepared, settle: Settle, progress: Progress, toFallback?: ToFallback) {
  const s: Serving = {
    deps, request, reply, kind, p, settle, progress, toFallback,
    started: performance.now(),
    id: `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${p.requestId}`,
    created: Math.floor((deps.now ?? Date.now)() / 1000),
    model: p.input.modelId,
    finished: false,
  };
  // Routed here, from memory, as the request is admitted: the workflow's first task then only
  // schedules `infer` (router.ts).
  const route = await deps.router?.route({ requestId: p.requestId, modelId: p.input.modelId, promptTokens: p.input.promptTokensEstimate, maxTokens: p.input.sampling.maxTokens });
  const relay = await open(deps, p);
  let drain: NodeJS.Timeout | undefined;
  try {
    const handleWf = await startWorkflow(deps, p, route);
    reply.raw.on('close', () => onClientGone(s, relay, handleWf));
    // The answer, not the workflow's end: what follows it (accrual, record, spot check) must not
    // delay the client. Where the update fails, the workflow's own end says why.
    const result: Promise<RequestOutcome> = handleWf.executeUpdate(answerUpdate).catch(() => handleWf.result());
    if (!relay) return await answerJson(s, result);

    // The relay must end whatever the outcome: at once when the workflow failed; shortly after
    // it succeeded, since the node acked its last chunk before completing but the relay may still
    // be reading it. Without that bound a lost or forged-over last chunk would hang the response.
    void result.then(
      () => (drain = setTimeout(() => relay.close(), relayDrainMs).unref()),
      () => relay.close(),
    );
    await streamAnswer(s, relay, result);
  } finally {
    clearTimeout(drain);
    relay?.close();
  }
}

const requestIdHeader = 'x-gitblock-request-id';

/** The answer: JSON, or with `stream: true` server-sent events; and every refusal the route may answer. */
const responses = (answer: z.ZodType) => ({
  200: { description: 'The answer', content: { 'application/json': { schema: answer }, 'text/event-stream': { schema: eventStream } } },
  ...errorResponses(401, 404, 429, 504),
});

export const completionRoutes: FastifyPluginAsyncZod<{ deps: GatewayDeps }> = async (app, { deps }) => {
  // Named first, so every answer past validation, a refusal of the key included, carries the id to quote.
  app.addHook('preHandler', async (_request, reply) => {
    void reply.header(requestIdHeader, randomBytes(12).toString('hex'));
  });
  app.addHook('preHandler', requireKey(deps));
  const chat = { tags: ['inference'], summary: 'Chat completion (OpenAI)', security: bearer, body: chatCompletionBody, response: responses(chatCompletionResponse) };
  app.post('/v1/chat/completions', { schema: chat }, (req, reply) => handle(deps, req, reply, 'chat', req.body));
  const legacy = { tags: ['inference'], summary: 'Completion (OpenAI, legacy)', security: bearer, body: completionBody, response: responses(completionResponse) };
  app.post('/v1/completions', { schema: legacy }, (req, reply) => handle(deps, req, reply, 'completion', req.body));
};
