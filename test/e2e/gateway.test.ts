/**
 * End to end: the official `openai` client, pointed at the gateway, served by GPU node
 * processes running the fixture model, through Temporal, NATS and MongoDB.
 */
import { Collection, type Document } from 'mongodb';
import { request as httpRequest } from 'node:http';
import OpenAI from 'openai';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { TokenRelay } from '../../gateway/relay.ts';
import { searchAttributes, timeouts, workflowIds } from '../../temporal.config.ts';
import { signRegistration } from '../../workers/node/identity.ts';
import type { RequestOutcome } from '../../workflows/request.ts';
import { unique } from '../helpers.ts';
import type { NodeProcess } from '../node-process.ts';
import { startNetwork, type Network } from './harness.ts';
import { store } from '../../store/index.ts';

let net: Network;
let key: string;
let client: OpenAI;
let a: NodeProcess;
let b: NodeProcess;
const ask = [{ role: 'user' as const, content: 'Tell me about the mountains and the sea.' }];

beforeAll(async () => {
  net = await startNetwork({ requestsPerMinute: 1000, tokensPerDay: 10_000_000 });
  // Two registered nodes; slowed down so a test can kill one mid-answer.
  [a, b] = await Promise.all([net.startNode('e2e-a', ['--test-faults', 'slow:15', '--context-size', '1024']), net.startNode('e2e-b', ['--test-faults', 'slow:15', '--context-size', '1024'])]);
  const issued = await fetch(`${net.url}/v1/keys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  expect(issued.status).toBe(201);
  key = ((await issued.json()) as { key: string }).key;
  client = new OpenAI({ baseURL: `${net.url}/v1`, apiKey: key, maxRetries: 0 });
});

afterAll(async () => {
  await net?.stop();
});

describe('the gateway with the official openai client', () => {
  it('answers a chat completion, with a receipt, as a req-<id> workflow carrying model and node search attributes', async () => {
    const { data, response } = await client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 24, temperature: 0 }).withResponse();
    expect(data.object).toBe('chat.completion');
    expect(data.choices[0]!.message.content!.length).toBeGreaterThan(0);
    expect(data.choices[0]!.finish_reason).toBe('length');
    expect(data.usage).toMatchObject({ completion_tokens: 24 });
    const requestId = response.headers.get('x-gitblock-request-id')!;
    const node = response.headers.get('x-gitblock-node')!;
    expect([a.nodeId, b.nodeId]).toContain(node);
    expect(response.headers.get('x-gitblock-route-reason')).toMatch(/slots free/);
    expect((data as unknown as { gitblock: { node_id: string } }).gitblock.node_id).toBe(node);

    // The answer comes before the accrual, the record and the spot-check draw (issue 12): they follow.
    const handle = net.temporal.workflow.getHandle(workflowIds.request(requestId));
    const settled = (await handle.result()) as RequestOutcome;
    expect(settled.result.nodeId).toBe(node);
    const described = await handle.describe();
    expect(described.status.name).toBe('COMPLETED');
    expect(described.searchAttributes[searchAttributes.model.name]).toEqual(['gitblock-tiny']);
    expect(described.searchAttributes[searchAttributes.node.name]).toEqual([node]);

    const receipt = await fetch(`${net.url}/v1/requests/${requestId}`, { headers: { authorization: `Bearer ${key}` } });
    expect(receipt.status).toBe(200);
    const body = (await receipt.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ id: requestId, status: 'completed', nodeId: node, usage: { completionTokens: 24 } });
    // Nodes on probation are spot-checked at random: any of these is a correct receipt. Neither
    // node is an established verifier in this network, so a check ends unverified.
    expect(['not sampled', 'pending', 'unverified']).toContain((body['verification'] as { status: string }).status);
    expect((body['accrual'] as { status: string; amount: string }).status).toBe('accrued');
    expect(BigInt((body['accrual'] as { amount: string }).amount)).toBeGreaterThan(0n);
  });

  it('streams a chat completion that matches the non-streamed answer, with usage in the last chunk', async () => {
    const whole = await client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 40, temperature: 0 });
    const stream = await client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 40, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage;
    let finish;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      finish ??= chunk.choices[0]?.finish_reason ?? undefined;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(whole.choices[0]!.message.content);
    expect(finish).toBe('length');
    expect(usage).toMatchObject({ completion_tokens: 40 });
  });

  it('serves plain completions, streamed and not', async () => {
    const plain = await client.completions.create({ model: 'gitblock-tiny', prompt: 'Once upon a time', max_tokens: 16, temperature: 0 });
    expect(plain.object).toBe('text_completion');
    let streamed = '';
    for await (const chunk of await client.completions.create({ model: 'gitblock-tiny', prompt: 'Once upon a time', max_tokens: 16, temperature: 0, stream: true })) streamed += chunk.choices[0]?.text ?? '';
    expect(streamed).toBe(plain.choices[0]!.text);
  });

  it('keeps one continuous answer when the serving node is killed mid-stream', async () => {
    const reference = await client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 150, temperature: 0 });
    const stream = await client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 150, temperature: 0, stream: true });
    let text = '';
    let serving: string | undefined;
    let killed: string | undefined;
    let pieces = 0;
    let requestId = '';
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      requestId = chunk.id.replace('chatcmpl-', '');
      // The first content chunk names the node that serves it.
      serving ??= (chunk as unknown as { gitblock?: { node_id?: string } }).gitblock?.node_id;
      if (++pieces === 4 && !killed) {
        killed = serving;
        await [a, b].find((n) => n.nodeId === killed)!.stop('SIGKILL');
      }
    }
    expect(killed).toBeDefined();
    expect(text).toBe(reference.choices[0]!.message.content);
    // The other node finished the answer, continuing from what the killed one had delivered.
    await net.temporal.workflow.getHandle(workflowIds.request(requestId)).result();
    const record = await store(net.mongo.db).requests.findOne({ _id: requestId });
    expect(record?.['nodeId']).not.toBe(killed);
    expect(record?.['continuedFromTokens']).toBeGreaterThan(0);
  });

  it('cancels generation when the client disconnects', async () => {
    const survivor = [a, b].find((n) => n.child.exitCode === null && n.child.signalCode === null) ?? (await net.startNode('e2e-c', ['--test-faults', 'slow:15', '--context-size', '1024']));
    expect(survivor).toBeDefined();
    const abort = new AbortController();
    const stream = await client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 800, temperature: 0, stream: true }, { signal: abort.signal });
    let id = '';
    let pieces = 0;
    try {
      for await (const chunk of stream) {
        id = chunk.id;
        if (++pieces === 3) abort.abort();
      }
    } catch {
      // the client's own abort
    }
    const requestId = id.replace('chatcmpl-', '');
    const handle = net.temporal.workflow.getHandle(workflowIds.request(requestId));
    const deadline = Date.now() + 10_000;
    while ((await handle.describe()).status.name === 'RUNNING' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect((await handle.describe()).status.name).toBe('CANCELLED');
    const doc = await store(net.mongo.db).requests.findOne({ _id: requestId });
    expect(doc?.['status']).toBe('cancelled');
  });

  it('gives back the unused reservation of a stream the client cancels', async () => {
    const { key: own, id: keyId } = await net.keys.issue('cancel-refund');
    const c = new OpenAI({ baseURL: `${net.url}/v1`, apiKey: own, maxRetries: 0 });
    const abort = new AbortController();
    const stream = await c.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 800, temperature: 0, stream: true }, { signal: abort.signal });
    let pieces = 0;
    try {
      for await (const _ of stream) if (++pieces === 3) abort.abort();
    } catch {
      // the client's own abort
    }
    // Reserved: the prompt estimate plus 800. Settled once the workflow is cancelled: the
    // prompt and the few tokens sent are charged, the rest given back.
    const deadline = Date.now() + 15_000;
    let used = (await net.keys.usage(keyId)).usedTokens;
    while (used >= 800 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      used = (await net.keys.usage(keyId)).usedTokens;
    }
    expect(used).toBeGreaterThan(0);
    expect(used).toBeLessThan(800);
  });

  it('closes the socket right after the last chunk when the client sent Connection: close', async () => {
    const { doneAt, closedAt, headers } = await new Promise<{ doneAt: number; closedAt: number; headers: Record<string, unknown> }>((resolve, reject) => {
      let doneAt = 0;
      let body = '';
      const req = httpRequest(`${net.url}/v1/chat/completions`, {
        method: 'POST',
        agent: false,
        headers: { connection: 'close', 'content-type': 'application/json', authorization: `Bearer ${key}` },
      });
      req.on('response', (res) => {
        res.on('data', (d: Buffer) => {
          body += d.toString();
          if (!doneAt && body.includes('data: [DONE]')) doneAt = Date.now();
        });
        res.resume();
        req.socket?.once('close', () => resolve({ doneAt, closedAt: Date.now(), headers: res.headers }));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ model: 'gitblock-tiny', messages: ask, max_tokens: 8, stream: true }));
    });
    expect(doneAt).toBeGreaterThan(0);
    expect(headers['connection']).toBe('close');
    expect(closedAt - doneAt).toBeLessThan(1_000);
  });

  it('lists live models with their capacity', async () => {
    const models = await client.models.list();
    const tiny = models.data.find((m) => m.id === 'gitblock-tiny') as unknown as { gitblock: { nodes: number; max_context: number } };
    expect(tiny.gitblock.nodes).toBeGreaterThanOrEqual(1);
    expect(tiny.gitblock.max_context).toBe(1024);
    expect(models.data.find((m) => m.id === 'smollm2-135m')).toBeUndefined();
  });
});

describe('errors, in OpenAI’s shape and status', () => {
  const expectError = async (promise: Promise<unknown>, status: number, code: string, message: RegExp) => {
    const error = await promise.then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(status);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe(code);
    expect((error as Error).message).toMatch(message);
  };

  it('400 for a bad body, naming the problem', async () => {
    await expectError(client.chat.completions.create({ model: 'gitblock-tiny', messages: [] }), 400, 'invalid_body', /messages/);
    await expectError(client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 100_000 }), 400, 'invalid_body', /max_tokens.*8192/);
    await expectError(client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 3000 }), 400, 'context_length_exceeded', /maximum context is 2048 tokens/);
  });

  it('413 for a body over the size limit', async () => {
    const response = await fetch(`${net.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: 'gitblock-tiny', messages: [{ role: 'user', content: 'x'.repeat(1_100_000) }] }),
    });
    expect(response.status).toBe(413);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('body_too_large');
  });

  it('405 with Allow for a method a path does not answer, before reading its body; 400 for a path the router refuses', async () => {
    const wrong = await fetch(`${net.url}/v1/chat/completions`, { method: 'GET' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('POST');
    expect(await wrong.json()).toEqual({ error: { message: 'GET is not allowed on /v1/chat/completions; it allows POST', type: 'invalid_request_error', param: null, code: 'method_not_allowed' } });
    // A body that is no JSON: refused for its method, not parsed.
    const put = await fetch(`${net.url}/v1/models/gitblock-tiny`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{' });
    expect([put.status, put.headers.get('allow')]).toEqual([405, 'GET, HEAD']);
    // A static path keeps its methods: GET /v1/nodes/register is no lookup of a node called "register".
    const register = await fetch(`${net.url}/v1/nodes/register`);
    expect([register.status, register.headers.get('allow')]).toEqual([405, 'POST']);
    // An unknown path stays a 404, whatever the method.
    expect((await fetch(`${net.url}/v1/nowhere`, { method: 'DELETE' })).status).toBe(404);
    for (const path of [`/v1/models/${'x'.repeat(600)}`, '/v1/models/%E0%A4%A']) {
      const refused = await fetch(`${net.url}${path}`);
      expect(refused.status, path).toBe(400);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('invalid_body');
    }
  });

  it('401 for a bad key', async () => {
    const stranger = new OpenAI({ baseURL: `${net.url}/v1`, apiKey: 'gb-not-a-key', maxRetries: 0 });
    await expectError(stranger.chat.completions.create({ model: 'gitblock-tiny', messages: ask }), 401, 'invalid_api_key', /Incorrect API key/);
  });

  it('404 for an unknown model', async () => {
    await expectError(client.chat.completions.create({ model: 'gpt-17', messages: ask }), 404, 'model_not_found', /gpt-17/);
  });

  it('503 when no node serves the model, or none can fit the request', async () => {
    await expectError(client.chat.completions.create({ model: 'smollm2-135m', messages: ask }), 503, 'no_node_available', /No node is serving smollm2-135m/);
    await expectError(client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 1500 }), 503, 'no_node_available', /largest available for gitblock-tiny is 1024/);
  });

  it('500 when the request cannot be recorded or relayed, with the reservation given back', async () => {
    const { key: own, id: keyId } = await net.keys.issue('broken-dispatch');
    const c = new OpenAI({ baseURL: `${net.url}/v1`, apiKey: own, maxRetries: 0 });
    // The gateway writes the request's record as an upsert (it may land after the workflow's own).
    const updateOne = Collection.prototype.updateOne;
    const failInsert = vi.spyOn(Collection.prototype, 'updateOne').mockImplementation(function (this: Collection, filter, update, options) {
      const set = (update as { $set?: Document }).$set;
      if (this.collectionName === 'requests' && set?.['keyId'] === keyId) return Promise.reject(new Error('injected: insert failed'));
      return updateOne.call(this, filter, update, options);
    });
    try {
      await expectError(c.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 50 }), 500, 'internal_error', /internal error/);
    } finally {
      failInsert.mockRestore();
    }
    expect((await net.keys.usage(keyId)).usedTokens).toBe(0);

    const failOpen = vi.spyOn(TokenRelay, 'open').mockRejectedValueOnce(new Error('injected: no consumer'));
    try {
      await expectError(c.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 50, stream: true }), 500, 'internal_error', /internal error/);
    } finally {
      failOpen.mockRestore();
    }
    expect((await net.keys.usage(keyId)).usedTokens).toBe(0);
  });

  it('504 when the network does not finish the request in time, streamed or not, with the reservation given back', async () => {
    const { key: own, id: keyId } = await net.keys.issue('timed-out');
    const c = new OpenAI({ baseURL: `${net.url}/v1`, apiKey: own, maxRetries: 0, timeout: 30_000 });
    const workflows = net.temporal.workflow;
    const start = workflows.start.bind(workflows);
    const asked: unknown[] = [];
    const noWorker = vi.spyOn(workflows, 'start').mockImplementation(((workflow: never, options: Parameters<typeof start>[1]) => {
      asked.push(options.workflowExecutionTimeout);
      // A task queue nobody polls: to this request, the control worker is down. The bound is
      // shortened so the test need not wait out the real one.
      return start(workflow, { ...options, taskQueue: unique('no-worker'), workflowExecutionTimeout: '2 seconds' } as never);
    }) as never);
    try {
      await expectError(c.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 50 }), 504, 'upstream_timeout', /did not finish this request in time/);
      const stream = await c.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 50, stream: true });
      // Streamed, the error arrives in the stream (the 200 went out first) and the stream ends.
      const error = await (async () => {
        for await (const _ of stream);
      })().then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(OpenAI.APIError);
      expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe('upstream_timeout');
    } finally {
      noWorker.mockRestore();
    }
    expect(asked).toEqual([timeouts.requestExecution, timeouts.requestExecution]);
    expect((await net.keys.usage(keyId)).usedTokens).toBe(0);
    // Nothing in the workflow ran to record the end: the gateway did.
    const records = await store(net.mongo.db).requests.find({ keyId }).toArray();
    expect(records.map((r) => r['status'])).toEqual(['failed', 'failed']);
  });

  it('429 for the rate limit and for the daily quota, before any work starts', async () => {
    // Rate windows are fixed UTC minutes: start early in one, so the two requests share it.
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 40_000) await new Promise((r) => setTimeout(r, 60_500 - intoMinute));
    const limited = (await net.keys.issue('limited')).key;
    await store(net.mongo.db).apiKeys.updateOne({ label: 'limited' }, { $set: { 'policy.requestsPerMinute': 2, 'policy.tokensPerDay': 600 } });
    const c = new OpenAI({ baseURL: `${net.url}/v1`, apiKey: limited, maxRetries: 0 });
    await expectError(c.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 700 }), 429, 'insufficient_quota', /quota has 600 left/);
    await c.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 4 });
    await expectError(c.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 4 }), 429, 'rate_limit_exceeded', /Rate limit reached/);
  });
});

describe('registration and operations endpoints', () => {
  it('serves health, metrics and an OpenAPI document', async () => {
    expect(((await (await fetch(`${net.url}/health`)).json()) as { status: string }).status).toBe('ok');
    const metrics = await (await fetch(`${net.url}/metrics`)).text();
    expect(metrics).toMatch(/gitblock_requests_total\{model="gitblock-tiny",outcome="ok"\} \d+/);
    // Refusals are counted too (the 429s of the test above), by route, status and code.
    expect(metrics).toMatch(/gitblock_http_responses_total\{route="\/v1\/chat\/completions",status="429",code="rate_limit_exceeded"\} [1-9]/);
    expect(metrics).toMatch(/gitblock_http_responses_total\{route="\/v1\/chat\/completions",status="200",code=""\} [1-9]/);
    const openapi = (await (await fetch(`${net.url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(openapi.paths)).toEqual(expect.arrayContaining(['/v1/chat/completions', '/v1/completions', '/v1/models', '/v1/keys', '/v1/nodes/register']));
  });

  it('shows every node’s standing and reputation, and refuses a bad or unknown node id', async () => {
    const list = (await (await fetch(`${net.url}/v1/nodes?model=gitblock-tiny`)).json()) as { object: string; data: { id: string; state: string; reputation: number; live: boolean; requests_served: number }[] };
    expect(list.object).toBe('list');
    const survivor = [a, b].find((n) => n.child.exitCode === null && n.child.signalCode === null)!;
    const shown = list.data.find((n) => n.id === survivor.nodeId);
    expect(shown).toMatchObject({ live: true, state: expect.stringMatching(/^(probation|active|degraded)$/) });
    expect(shown!.reputation).toBeGreaterThan(0);
    expect(shown!.reputation).toBeLessThanOrEqual(1);
    expect(shown!.requests_served).toBeGreaterThan(0);
    // Best reputation first.
    const reputations = list.data.map((n) => n.reputation);
    expect(reputations).toEqual([...reputations].sort((x, y) => y - x));
    // Standing moves as spot checks land: compare what does not.
    const one = (await (await fetch(`${net.url}/v1/nodes/${survivor.nodeId}`)).json()) as Record<string, unknown>;
    expect(one).toMatchObject({ id: survivor.nodeId, object: 'node', models: ['gitblock-tiny'], live: true });

    const unknown = await fetch(`${net.url}/v1/nodes/no-such-node`);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('not_found');
    const bad = await fetch(`${net.url}/v1/nodes/Bad!Id`);
    expect(bad.status).toBe(400);
    expect((await fetch(`${net.url}/v1/nodes?model=${'x'.repeat(100)}`)).status).toBe(400);
  });

  it('gives a new node id to one operator only, even when two register it at once', async () => {
    const nodeId = unique('contested');
    const hash = 'ab'.repeat(32);
    const fields = { nodeId, models: ['gitblock-tiny'], modelHashes: [hash], gpu: 'cpu', version: '0.1.0' };
    const [first, second] = [generatePrivateKey(), generatePrivateKey()].map((k) => privateKeyToAccount(k));
    const post = async (account: typeof first) =>
      fetch(`${net.url}/v1/nodes/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(await signRegistration(account!, fields, 31337)) });
    // Both requests read "no such node" before either writes: the race a plain check-then-write loses.
    const findOne = Collection.prototype.findOne;
    const arrived: (() => void)[] = [];
    const barrier = vi.spyOn(Collection.prototype, 'findOne').mockImplementation(async function (this: Collection, ...args: unknown[]) {
      const found = await (findOne as (...a: unknown[]) => Promise<unknown>).apply(this, args);
      if (this.collectionName === 'node_registrations' && (args[0] as { _id?: string } | undefined)?._id === nodeId && arrived.length < 2) {
        await new Promise<void>((release) => {
          arrived.push(release);
          if (arrived.length === 2) for (const r of arrived) r();
          setTimeout(release, 5_000); // never hang the test if one request fails earlier
        });
      }
      return found;
    } as never);
    let statuses: number[];
    try {
      statuses = (await Promise.all([post(first), post(second)])).map((r) => r.status).sort();
    } finally {
      barrier.mockRestore();
    }
    expect(arrived).toHaveLength(2);
    expect(statuses).toEqual([201, 409]);
    const stored = await store(net.mongo.db).registrations.find({ _id: nodeId }).toArray();
    expect(stored).toHaveLength(1);
    // The loser stays refused; the winner may register again.
    const winner = [first!, second!].find((a) => a.address === stored[0]!.operator)!;
    const loser = [first!, second!].find((a) => a !== winner)!;
    expect((await post(loser)).status).toBe(409);
    expect((await post(winner)).status).toBe(200);
  });

  it('refuses a garbage registration in OpenAI’s error shape', async () => {
    const response = await fetch(`${net.url}/v1/nodes/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ registration: { nodeId: 'x' }, signature: '0x00' }) });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('invalid_body');
  });
});
