/**
 * The `infer` activity, run by a GPU node on `node.<nodeId>` and `model.<modelId>`. It
 * streams sequence-numbered token chunks to the request's JetStream subject and heartbeats
 * its progress. A later attempt (another node after a failover, or a retry here) reads what
 * was already delivered from the subject and continues after it: no text lost, none repeated.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { Token } from 'node-llama-cpp';
import { inferErrors, type InferInput, type InferProgress, type InferResult, type TokenLogprob } from '../domain/inference.ts';
import { inferInputSchema } from '../domain/inference-schema.ts';
import { EngineError, type InferenceEngine } from '../domain/engine.ts';
import { emptyDelivery, StreamSupersededError, TokenStreamWriter, type Delivered, type TaskStreams } from './token-stream.ts';

/** Live counters the node heartbeats to the router. */
export class NodeLoad {
  inFlight = 0;
  /** Exponential moving average of per-request tokens per second. */
  recentTokensPerSecond = 0;

  record(tokensPerSecond: number): void {
    this.recentTokensPerSecond = this.recentTokensPerSecond ? 0.7 * this.recentTokensPerSecond + 0.3 * tokensPerSecond : tokensPerSecond;
  }
}

export interface InferDeps {
  nodeId: string;
  engines: ReadonlyMap<string, InferenceEngine>;
  /** The request's token stream: through the edge on a GPU node, JetStream itself elsewhere. */
  streams: TaskStreams;
  load: NodeLoad;
}

/**
 * The answer's content and the tool calls it made: the calls start at the model's call marker,
 * in the text its tokens decode to beyond what was released. Text that turns out not to be
 * calls after all is content, all of it.
 */
function answerOf(engine: InferenceEngine, input: InferInput, tokens: Token[], released: string, marker: string | undefined): Pick<InferResult, 'text' | 'toolCalls'> {
  if (!marker || !input.tools?.length) return { text: released };
  const decoded = engine.detokenize(tokens);
  const at = decoded.indexOf(marker, Math.max(0, released.length - marker.length));
  if (at < 0) return { text: released };
  const toolCalls = engine.parseToolCalls(decoded.slice(at), input.tools);
  return toolCalls ? { text: released, toolCalls } : { text: decoded };
}

/** What `infer` works from, once its input is checked and its prompt rendered. */
interface Job {
  input: InferInput;
  engine: InferenceEngine;
  promptTokens: Token[];
  /** With tools, text from where a call starts is the calls: withheld from the stream, parsed at the end. */
  hold: string | undefined;
  delivered: Delivered;
  /** The result for these tokens, timed from the activity's start. */
  result: (tokens: number[], released: string, finishReason: InferResult['finishReason'], newTokens: number, generationMs: number, ttft: number, logprobs?: TokenLogprob[]) => InferResult;
}

/** The checked input, the engine that serves its model and the rendered prompt; refuses what it cannot serve. */
function accept(deps: InferDeps, raw: InferInput): Pick<Job, 'input' | 'engine' | 'promptTokens' | 'hold'> {
  const parsed = inferInputSchema.safeParse(raw);
  if (!parsed.success) {
    throw ApplicationFailure.nonRetryable(`invalid infer input: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, inferErrors.badInput);
  }
  const input = parsed.data;
  const engine = deps.engines.get(input.modelId);
  if (!engine) {
    throw ApplicationFailure.retryable(`node ${deps.nodeId} does not serve ${input.modelId}`, inferErrors.modelNotLoaded);
  }
  const promptTokens = input.messages ? engine.renderChat(input.messages, input.tools) : engine.renderPrompt(input.prompt ?? '');
  return { input, engine, promptTokens, hold: input.tools?.length ? engine.toolCallMarker : undefined };
}

/** Builds `Job.result` for one attempt. */
function resultOf(deps: InferDeps, job: Pick<Job, 'input' | 'engine' | 'promptTokens' | 'hold'>, delivered: Delivered, started: number): Job['result'] {
  const { input, engine, promptTokens, hold } = job;
  return (tokens, released, finishReason, newTokens, generationMs, ttft, logprobs) => ({
    requestId: input.requestId,
    nodeId: deps.nodeId,
    modelId: engine.modelId,
    modelHash: engine.modelHash,
    ...answerOf(engine, input, tokens as Token[], released, hold),
    tokens,
    finishReason,
    usage: { promptTokens: promptTokens.length, completionTokens: tokens.length, totalTokens: promptTokens.length + tokens.length },
    continuedFromTokens: delivered.tokens.length,
    ...(logprobs ? { logprobs } : {}),
    timings: {
      timeToFirstTokenMs: ttft,
      tokensPerSecond: generationMs > 0 ? (newTokens * 1000) / generationMs : 0,
      totalMs: performance.now() - started,
    },
  });
}

/** The failure an attempt that stopped early ends with: what the workflow can tell apart. */
function failureOf(ctx: Context, writer: TokenStreamWriter, err: unknown): unknown {
  const cause = writer.error ?? err;
  if (cause instanceof StreamSupersededError) return ApplicationFailure.nonRetryable(cause.message, inferErrors.superseded);
  if (ctx.cancellationSignal.aborted) return new CancelledFailure('request cancelled');
  if (cause instanceof EngineError && cause.code === 'ABORTED') return ApplicationFailure.nonRetryable('request cancelled by the client', inferErrors.cancelled);
  if (cause instanceof EngineError && (cause.code === 'PROMPT_TOO_LONG' || cause.code === 'BAD_INPUT')) {
    // What no node can serve; `param` tells the client which of its parameters.
    return ApplicationFailure.create({ message: cause.message, type: inferErrors.badInput, nonRetryable: true, details: cause.param ? [{ param: cause.param }] : [] });
  }
  return cause;
}

/** Generates after what was delivered, streaming each token to the request's subject. */
async function generate(deps: InferDeps, ctx: Context, job: Job): Promise<InferResult> {
  const { input, engine, delivered } = job;
  const publisher = deps.streams.publisher(input);
  const writer = new TokenStreamWriter(publisher, deps.nodeId, delivered.nextSeq, delivered.lastStreamSeq);
  const abort = new AbortController();
  const onCancel = () => abort.abort();
  ctx.cancellationSignal.addEventListener('abort', onCancel);
  // The gateway's cancel message stops generation without waiting for a heartbeat round trip.
  const stopWatching = deps.streams.watchCancel(input, onCancel);
  let completionTokens = delivered.tokens.length;
  const progress = (): InferProgress => ({ nextSeq: writer.published, completionTokens });

  deps.load.inFlight++;
  // Heartbeats come from a ticker, not from each token: a call per token cost measurable
  // throughput, and the SDK sends at most one per throttle interval anyway. The ticker beats
  // only while tokens come (or during the prompt's evaluation, up to a minute), so a stalled
  // generation misses its heartbeats and the request fails over.
  ctx.heartbeat(progress());
  let lastBeatTokens = -1;
  const tickerStarted = performance.now();
  const ticker = setInterval(() => {
    const prefill = completionTokens === delivered.tokens.length && performance.now() - tickerStarted < 60_000;
    if (completionTokens !== lastBeatTokens || prefill) {
      lastBeatTokens = completionTokens;
      ctx.heartbeat(progress());
    }
  }, 500);
  try {
    const generated = await engine.generate({
      promptTokens: job.promptTokens,
      prefixTokens: delivered.tokens as Token[], // ids from the same model file (the hash is checked by routing)
      prefixText: delivered.text,
      sampling: input.sampling,
      signal: abort.signal,
      logprobs: input.logprobs,
      hold: job.hold,
      onToken: (token, text) => {
        completionTokens++;
        writer.push(token, text);
        if (writer.error) abort.abort();
      },
      onText: (text) => writer.pushText(text),
    });
    const tokens = [...delivered.tokens, ...generated.tokens];
    const done = job.result(tokens, delivered.text + generated.text, generated.finishReason, generated.tokens.length, generated.generationMs, generated.timeToFirstTokenMs, generated.logprobs);
    await writer.finish(done.finishReason, done.usage);
    deps.load.record(done.timings.tokensPerSecond);
    return done;
  } catch (err) {
    await writer.flush();
    throw failureOf(ctx, writer, err);
  } finally {
    clearInterval(ticker);
    deps.load.inFlight--;
    ctx.cancellationSignal.removeEventListener('abort', onCancel);
    stopWatching();
    publisher.close?.();
    ctx.heartbeat(progress());
  }
}

export function createInferActivities(deps: InferDeps) {
  return {
    async infer(raw: InferInput): Promise<InferResult> {
      const ctx = Context.current();
      const started = performance.now();
      const accepted = accept(deps, raw);
      const { input, engine, promptTokens } = accepted;
      // Reading a long stream takes many round trips, all before the ticker's first beat.
      ctx.heartbeat();
      // A first attempt has nothing to continue from: skip a round trip before the first token.
      const delivered = input.fresh && ctx.info.attempt === 1 ? emptyDelivery() : await deps.streams.readDelivered(input, { onProgress: () => ctx.heartbeat() });
      const result = resultOf(deps, accepted, delivered, started);
      // A retry after the answer was completely delivered (e.g. the result was lost): nothing to do.
      if (delivered.finished) {
        const logprobs = input.logprobs ? await engine.logprobsOf(promptTokens, delivered.tokens as Token[], delivered.text, input.sampling, input.logprobs.top) : undefined;
        return result(delivered.tokens, delivered.text, delivered.finished.reason, 0, 0, 0, logprobs);
      }
      return generate(deps, ctx, { ...accepted, delivered, result });
    },
  };
}

export type InferActivities = ReturnType<typeof createInferActivities>;
