/**
 * The fallback provider (issue 11, item 7) against the real network, with the official `openai`
 * client: the upstream is a second, real OpenAI-compatible server on the same engine
 * (bench/plain-server.ts). With no node live, requests are answered by it and marked, the key is
 * charged its usage, nothing accrues; an upstream that is down, hangs or answers nonsense gets a
 * clear error quickly; with none configured, 503 as before; with a node live, the node serves.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { startPlainServer, type PlainServer } from '../../bench/plain-server.ts';
import { FallbackProvider, type FallbackOptions } from '../../gateway/fallback.ts';
import { startNetwork, type Network } from './harness.ts';
import { store } from '../../store/index.ts';

let net: Network;
let plain: PlainServer;
let client: OpenAI;
let direct: OpenAI;
let key: string;
const ask = [{ role: 'user' as const, content: 'Tell me about the mountains and the sea.' }];
const cap = 24;

const provider = (overrides: Partial<FallbackOptions> = {}) =>
  new FallbackProvider({ url: plain.url, apiKey: 'sk-test-upstream', models: {}, maxConcurrent: 4, requestsPerMinute: 1000, timeoutMs: 60_000, maxTokens: cap, ...overrides });

/** An HTTP server answering every request with `answer`, or never when it is undefined. */
async function fakeUpstream(answer?: (res: ServerResponse) => void): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    req.resume();
    if (answer) req.on('end', () => answer(res));
  });
  server.on('connection', (s) => sockets.add(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/v1`,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** Runs `fn` with the gateway's fallback pointed at a fake upstream (see fakeUpstream), then puts the real one back. */
async function withFakeUpstream(answer: Parameters<typeof fakeUpstream>[0], overrides: Partial<FallbackOptions>, fn: () => Promise<void>): Promise<void> {
  const fake = await fakeUpstream(answer);
  net.gatewayDeps.fallback = provider({ url: fake.url, ...overrides });
  try {
    await fn();
  } finally {
    net.gatewayDeps.fallback = provider();
    await fake.close();
  }
}

async function apiError(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(OpenAI.APIError);
  return error as InstanceType<typeof OpenAI.APIError>;
}

/** A counter's value summed over its series whose labels include all of `labels`. */
async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${net.url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.split(' ').pop());
  }
  return sum;
}

async function receipt(id: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${net.url}/v1/requests/${id}`, { headers: { authorization: `Bearer ${key}` } });
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

/** The receipt says fallback, nothing accrued, no check drawn, and the key was charged the upstream's usage. */
async function expectServedByFallback(id: string, usage: { total_tokens: number; completion_tokens: number }) {
  const requestId = id.replace(/^(chatcmpl|cmpl)-/, '');
  expect(await receipt(id)).toMatchObject({
    status: 'completed',
    servedBy: 'fallback',
    usage: { totalTokens: usage.total_tokens, completionTokens: usage.completion_tokens },
    accrual: { status: 'skipped', amount: '0' },
    verification: { status: 'not sampled' },
  });
  expect(await store(net.mongo.db).ledger.countDocuments({ _id: requestId })).toBe(0);
  expect(await store(net.mongo.db).ledger.countDocuments({})).toBe(0);
  const settlement = await store(net.mongo.db).apiKeySettlements.findOne({ _id: requestId });
  expect(settlement?.actual).toBe(usage.total_tokens);
}

beforeAll(async () => {
  plain = await startPlainServer({ modelPath: inject('fixtureModelPath'), slots: 2, threads: 1, gpu: 'cpu' });
  net = await startNetwork({ requestsPerMinute: 1000, tokensPerDay: 10_000_000 });
  net.gatewayDeps.fallback = provider();
  const issued = await fetch(`${net.url}/v1/keys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  key = ((await issued.json()) as { key: string }).key;
  client = new OpenAI({ baseURL: `${net.url}/v1`, apiKey: key, maxRetries: 0 });
  direct = new OpenAI({ baseURL: plain.url, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await net?.stop();
  await plain?.close();
});

describe('with no node live, the fallback answers', () => {
  it('a chat completion, marked, with the upstream’s own answer and usage', async () => {
    const before = await metric('gitblock_fallback_requests_total', { stream: 'false', outcome: 'ok' });
    const { data, response } = await client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 12, temperature: 0 }).withResponse();
    const upstream = await direct.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 12, temperature: 0 });
    expect(response.headers.get('x-gitblock-served-by')).toBe('fallback');
    expect(data.system_fingerprint).toBe('gitblock-fallback');
    expect(data.model).toBe('gitblock-tiny');
    expect(data.choices[0]!.message.content).toBe(upstream.choices[0]!.message.content);
    expect(data.choices[0]!.message.content!.length).toBeGreaterThan(0);
    expect(data.usage).toEqual(upstream.usage);
    expect((data as unknown as { gitblock: unknown }).gitblock).toMatchObject({ served_by: 'fallback', node_id: null });
    await expectServedByFallback(data.id, data.usage!);
    expect(await metric('gitblock_fallback_requests_total', { stream: 'false', outcome: 'ok' })).toBe(before + 1);
  });

  it('a streamed chat completion, marked in every chunk, with the usage asked for', async () => {
    const { data: stream, response } = await client.chat.completions
      .create({ model: 'gitblock-tiny', messages: ask, max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true } })
      .withResponse();
    expect(response.headers.get('x-gitblock-served-by')).toBe('fallback');
    let text = '';
    let id = '';
    let usage: OpenAI.CompletionUsage | undefined;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      id = chunk.id;
      expect(chunk.system_fingerprint).toBe('gitblock-fallback');
      text += chunk.choices[0]?.delta.content ?? '';
      finish ??= chunk.choices[0]?.finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    const upstream = await direct.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 12, temperature: 0 });
    expect(text).toBe(upstream.choices[0]!.message.content);
    expect(finish).toBe('length');
    expect(usage).toEqual(upstream.usage);
    await expectServedByFallback(id, usage!);
    expect(await metric('gitblock_fallback_requests_total', { stream: 'true', outcome: 'ok' })).toBeGreaterThanOrEqual(1);
    expect(await metric('gitblock_fallback_request_seconds_count', { stream: 'true' })).toBeGreaterThanOrEqual(1);
  });

  it('legacy completions, streamed and not; max_tokens is held to the fallback’s cap', async () => {
    const plainAnswer = await client.completions.create({ model: 'gitblock-tiny', prompt: 'The people of the earth', max_tokens: 200, temperature: 0 });
    expect(plainAnswer.system_fingerprint).toBe('gitblock-fallback');
    expect(plainAnswer.usage!.completion_tokens).toBeLessThanOrEqual(cap);
    expect(plainAnswer.choices[0]!.finish_reason).toBe('length');
    await expectServedByFallback(plainAnswer.id, plainAnswer.usage!);
    const stream = await client.completions.create({ model: 'gitblock-tiny', prompt: 'The people of the earth', max_tokens: 200, temperature: 0, stream: true });
    let text = '';
    for await (const chunk of stream) {
      expect(chunk.system_fingerprint).toBe('gitblock-fallback');
      text += chunk.choices[0]?.text ?? '';
    }
    expect(text).toBe(plainAnswer.choices[0]!.text);
  });
});

describe('when the fallback cannot answer, a clear error, quickly', () => {
  it('down: 503 fallback_unavailable, streamed and not, counted', async () => {
    const gone = await fakeUpstream();
    await gone.close();
    net.gatewayDeps.fallback = provider({ url: gone.url });
    try {
      const before = await metric('gitblock_fallback_errors_total', { code: 'fallback_unavailable' });
      const started = Date.now();
      for (const stream of [false, true]) {
        const error = await apiError(client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 8, stream }));
        expect(error).toMatchObject({ status: 503, code: 'fallback_unavailable' });
      }
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(await metric('gitblock_fallback_errors_total', { code: 'fallback_unavailable' })).toBe(before + 2);
    } finally {
      net.gatewayDeps.fallback = provider();
    }
  });

  it('hanging: 504 fallback_timeout at its own deadline; past its concurrency, 503 at once', async () => {
    await withFakeUpstream(undefined, { timeoutMs: 1_500, maxConcurrent: 1 }, async () => {
      const started = Date.now();
      const first = apiError(client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 8 }));
      await new Promise((r) => setTimeout(r, 300));
      const busy = await apiError(client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 8 }));
      expect(busy).toMatchObject({ status: 503, code: 'fallback_unavailable' });
      expect(busy.message).toMatch(/at its limit/);
      expect(await first).toMatchObject({ status: 504, code: 'fallback_timeout' });
      expect(Date.now() - started).toBeLessThan(15_000);
    });
  });

  it('answering nonsense: 502 fallback_error, the nonsense never relayed; the key is charged nothing', async () => {
    const lie = (res: ServerResponse) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content: { evil: true } } }], usage: { prompt_tokens: -5 } }));
    };
    await withFakeUpstream(lie, {}, async () => {
      const error = await apiError(client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 8 }));
      expect(error).toMatchObject({ status: 502, code: 'fallback_error' });
      expect(error.message).not.toMatch(/evil/);
      const requestId = error.headers?.get('x-gitblock-request-id');
      expect(requestId).toMatch(/^[0-9a-f]{24}$/);
      expect(await receipt(requestId!)).toMatchObject({ status: 'failed', servedBy: 'fallback' });
      const settlement = await store(net.mongo.db).apiKeySettlements.findOne({ _id: requestId! });
      expect(settlement?.actual).toBe(0);
    });
  });

  it('a broken stream: the client gets the error event and the stream ends', async () => {
    const broken = (res: ServerResponse) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: 'hello' }, finish_reason: null }] })}\n\n`);
      res.end('data: {not json\n\n');
    };
    await withFakeUpstream(broken, {}, async () => {
      const stream = await client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 8, stream: true });
      let text = '';
      const error = await (async () => {
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      })().then(() => undefined, (e: unknown) => e);
      expect(text).toBe('hello');
      expect(error).toBeInstanceOf(OpenAI.APIError);
      expect((error as Error).message).toMatch(/not a valid completion/);
    });
  });

  it('with no fallback configured: 503 no_node_available, as before', async () => {
    net.gatewayDeps.fallback = undefined;
    try {
      const error = await apiError(client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 8 }));
      expect(error).toMatchObject({ status: 503, code: 'no_node_available' });
    } finally {
      net.gatewayDeps.fallback = provider();
    }
  });
});

describe('with a node live', () => {
  it('the node serves, not the fallback', async () => {
    await net.startNode('fallback', ['--context-size', '1024']);
    const before = await metric('gitblock_fallback_requests_total', {});
    const { data, response } = await client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 8, temperature: 0 }).withResponse();
    expect(response.headers.get('x-gitblock-served-by')).toBeNull();
    expect(data.system_fingerprint).toMatch(/^gguf-/);
    expect(response.headers.get('x-gitblock-node')).toBe(net.nodes[0]!.nodeId);
    expect(await metric('gitblock_fallback_requests_total', {})).toBe(before);
  });
});
