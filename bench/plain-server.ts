/**
 * A plain OpenAI-compatible server on the project's own engine (workers/node/engine.ts), with
 * no Temporal, NATS or store: what "one llama.cpp box" answers, for the latency benchmark to
 * put beside the network, and for the gateway's fallback provider to be tested against a real
 * upstream. It parses bodies with the gateway's own schemas and translation
 * (gateway/schemas/completions.ts, gateway/openai-request.ts), so both sample the same way.
 *
 *   npx tsx bench/plain-server.ts --model PATH [--port N] [--host H] [--slots N]
 */
import { basename, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Sampling } from '../domain/inference.ts';
import { ApiError, errorHandler } from '../gateway/errors.ts';
import { messagesOf, samplingOf } from '../gateway/openai-request.ts';
import { chatCompletionBody, completionBody, gatewayLimits, type ChatCompletionBody, type CompletionBody } from '../gateway/schemas/completions.ts';
import { EngineError } from '../domain/engine.ts';
import { ModelEngine } from '../workers/node/engine.ts';
import { detectCompute, type GpuChoice } from '../workers/node/gpu.ts';

export interface PlainServerOptions {
  modelPath: string;
  port?: number;
  host?: string;
  /** Requests generated at once (context sequences); more wait their turn. Default 4. */
  slots?: number;
  /** Tokens each slot holds, prompt + answer. Default 2048. */
  contextSize?: number;
  /** CPU threads; 0 = node-llama-cpp's default. */
  threads?: number;
  gpu?: GpuChoice;
}

export interface PlainServer {
  /** The base URL, ending in `/v1`. */
  url: string;
  close(): Promise<void>;
}

type Kind = 'chat' | 'completion';

/** Hands out the engine's sequences in arrival order: the engine refuses when all are busy. */
class Slots {
  private waiting: (() => void)[] = [];
  constructor(private free: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}

/** What a request is the parameters of: the features of the network's own nodes beyond plain text are refused. */
function plainSampling(body: ChatCompletionBody | CompletionBody): Sampling {
  const chat = body as ChatCompletionBody;
  if (chat.tools?.length) throw new ApiError('unsupported_parameter', 'tools are not supported by the plain server', 'tools');
  if (body.logprobs != null && body.logprobs !== false) throw new ApiError('unsupported_parameter', 'logprobs are not supported by the plain server', 'logprobs');
  return samplingOf(body);
}

export async function startPlainServer(opts: PlainServerOptions): Promise<PlainServer> {
  const slotCount = opts.slots ?? 4;
  const modelId = basename(opts.modelPath).replace(/\.gguf$/i, '');
  const compute = await detectCompute(opts.gpu ?? 'auto');
  const engine = await ModelEngine.load(compute.llama, { modelId, modelPath: opts.modelPath, contextSize: opts.contextSize ?? 2048, sequences: slotCount, threads: opts.threads ?? 0 });
  const slots = new Slots(slotCount);
  const app = Fastify({ bodyLimit: gatewayLimits.bodyBytes });
  // Bodies are checked by the gateway's own zod schemas, as the gateway checks them.
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(errorHandler);

  app.get('/v1/models', async () => ({ object: 'list', data: [{ id: modelId, object: 'model', created: 0, owned_by: 'plain-server' }] }));

  const handle = async (request: FastifyRequest, reply: FastifyReply, kind: Kind) => {
    const body = request.body as ChatCompletionBody | CompletionBody;
    if (body.model !== modelId) throw new ApiError('model_not_found', `The model '${body.model}' does not exist; this server serves '${modelId}'`, 'model');
    const sampling = plainSampling(body);
    const promptTokens = kind === 'chat' ? engine.renderChat(messagesOf(body as ChatCompletionBody)) : engine.renderPrompt((body as CompletionBody).prompt);
    if (promptTokens.length + sampling.maxTokens > engine.contextSize) {
      throw new ApiError('context_length_exceeded', `prompt (${promptTokens.length} tokens) + max_tokens (${sampling.maxTokens}) exceeds this server's context of ${engine.contextSize} tokens`, 'max_tokens');
    }
    const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomBytes(12).toString('hex')}`;
    const head = { id, object: kind === 'chat' ? 'chat.completion' : 'text_completion', created: Math.floor(Date.now() / 1000), model: modelId, system_fingerprint: `gguf-${engine.modelHash.slice(0, 16)}` };
    const choice = (text: string, finish: string | null, delta: boolean) =>
      kind === 'completion'
        ? { index: 0, text, finish_reason: finish, logprobs: null }
        : delta
          ? { index: 0, delta: text ? { content: text } : {}, finish_reason: finish, logprobs: null }
          : { index: 0, message: { role: 'assistant', content: text }, finish_reason: finish, logprobs: null };
    const usage = (completion: number) => ({ prompt_tokens: promptTokens.length, completion_tokens: completion, total_tokens: promptTokens.length + completion });
    const abort = new AbortController();
    reply.raw.on('close', () => abort.abort());
    const generate = (onPiece?: (text: string) => void) =>
      slots.run(() => engine.generate({ promptTokens, sampling, signal: abort.signal, ...(onPiece ? { onToken: (_t, text) => text && onPiece(text), onText: onPiece } : {}) }));

    if (body.stream !== true) {
      const result = await generate();
      return reply.send({ ...head, choices: [choice(result.text, result.finishReason, false)], usage: usage(result.tokens.length) });
    }
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    const chunk = { ...head, object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion' };
    const send = (payload: unknown) => void (raw.destroyed || raw.write(`data: ${JSON.stringify(payload)}\n\n`));
    try {
      if (kind === 'chat') send({ ...chunk, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null, logprobs: null }] });
      const result = await generate((text) => send({ ...chunk, choices: [choice(text, null, true)] }));
      send({ ...chunk, choices: [choice('', result.finishReason, true)] });
      if (body.stream_options?.include_usage) send({ ...chunk, choices: [], usage: usage(result.tokens.length) });
    } catch (err) {
      if (!(err instanceof EngineError && err.code === 'ABORTED')) send(new ApiError('internal_error', (err as Error).message).body());
    } finally {
      if (!raw.writableEnded && !raw.destroyed) raw.end('data: [DONE]\n\n');
    }
  };
  app.post('/v1/chat/completions', { schema: { body: chatCompletionBody } }, (req, reply) => handle(req, reply, 'chat'));
  app.post('/v1/completions', { schema: { body: completionBody } }, (req, reply) => handle(req, reply, 'completion'));

  const host = opts.host ?? '127.0.0.1';
  try {
    await app.listen({ port: opts.port ?? 0, host });
  } catch (err) {
    await engine[Symbol.asyncDispose]();
    throw err;
  }
  const { port } = app.server.address() as { port: number };
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/v1`,
    async close() {
      await app.close();
      await engine[Symbol.asyncDispose]();
    },
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const { flag, intFlag } = await import('./harness.ts');
  const modelPath = flag('model', '');
  if (!modelPath) {
    console.error('usage: npx tsx bench/plain-server.ts --model PATH [--port N] [--host H] [--slots N]');
    process.exit(2);
  }
  const server = await startPlainServer({ modelPath, port: intFlag('port', 8000, 0), host: flag('host', '127.0.0.1'), slots: intFlag('slots', 4) });
  console.log(`serving ${basename(modelPath).replace(/\.gguf$/i, '')} at ${server.url}`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
