/**
 * The OpenAI API in depth, with the official `openai` client against the real network: model
 * retrieval, sampling parameters honoured or refused, structured output, logprobs.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startNetwork, type Network } from './harness.ts';

let net: Network;
let client: OpenAI;
/** A prompt the fixture's greedy answer repeats itself for, so penalties show. */
const ask = [{ role: 'user' as const, content: 'Tell me about the mountains and the sea.' }];

beforeAll(async () => {
  net = await startNetwork({ requestsPerMinute: 1000, tokensPerDay: 10_000_000 });
  await net.startNode('api', ['--context-size', '1024']);
  const issued = await fetch(`${net.url}/v1/keys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  expect(issued.status).toBe(201);
  client = new OpenAI({ baseURL: `${net.url}/v1`, apiKey: ((await issued.json()) as { key: string }).key, maxRetries: 0 });
});

afterAll(async () => {
  await net?.stop();
});

/** The API error a call ends with. */
async function apiError(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(OpenAI.APIError);
  return error as InstanceType<typeof OpenAI.APIError>;
}

describe('models', () => {
  it('retrieves a model as OpenAI does, with its live capacity', async () => {
    const model = await client.models.retrieve('gitblock-tiny');
    expect(model).toMatchObject({ id: 'gitblock-tiny', object: 'model', owned_by: 'gitblock-network', gitblock: { nodes: 1, max_context: 1024 } });
    // A catalog model no node serves now exists all the same.
    expect(await client.models.retrieve('smollm2-135m')).toMatchObject({ id: 'smollm2-135m', gitblock: { nodes: 0 } });
  });

  it('404s an unknown model in OpenAI’s error shape', async () => {
    const error = await apiError(client.models.retrieve('gpt-17'));
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect(error).toMatchObject({ status: 404, code: 'model_not_found', param: 'model', type: 'invalid_request_error' });
    expect(error.message).toMatch(/gpt-17/);
  });
});

describe('sampling parameters, honoured or refused', () => {
  it('applies frequency and presence penalties: a greedy answer that repeated itself changes', async () => {
    const plain = await client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 30, temperature: 0 });
    const text = plain.choices[0]!.message.content!;
    const words = text.split(/\s+/);
    expect(new Set(words).size).toBeLessThan(words.length);
    for (const penalty of [{ frequency_penalty: 2 }, { presence_penalty: 2 }]) {
      const penalised = await client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 30, temperature: 0, ...penalty });
      expect(penalised.choices[0]!.message.content).not.toBe(text);
    }
    // Zero penalties are no penalties.
    const zero = await client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 30, temperature: 0, frequency_penalty: 0, presence_penalty: 0 });
    expect(zero.choices[0]!.message.content).toBe(text);
  });

  it('applies logit_bias by token id: +100 forces a token, on chat and legacy completions', async () => {
    const plain = await client.completions.create({ model: 'gitblock-tiny', prompt: 'The people of the earth', max_tokens: 4, temperature: 0 });
    const biased = await client.completions.create({ model: 'gitblock-tiny', prompt: 'The people of the earth', max_tokens: 4, temperature: 0, logit_bias: { '1180': 100 } });
    expect(biased.choices[0]!.text).not.toBe(plain.choices[0]!.text);
    const chat = await client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 4, temperature: 0, logit_bias: { '1180': 100 } });
    for (const text of [chat.choices[0]!.message.content!, biased.choices[0]!.text]) expect(new Set(text.trim().split(/\s+/)).size).toBe(1);
  });

  it('400s a parameter it does not support, naming it, on chat and legacy completions', async () => {
    const unsupported: [string, Record<string, unknown>][] = [
      ['functions', { functions: [{ name: 'f', parameters: { type: 'object' } }] }],
      ['audio', { audio: { voice: 'alloy', format: 'mp3' } }],
      ['reasoning_effort', { reasoning_effort: 'low' }],
      ['frobnicate', { frobnicate: true }],
    ];
    for (const [param, extra] of unsupported) {
      const error = await apiError(client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, ...extra } as never));
      expect(error).toMatchObject({ status: 400, code: 'unsupported_parameter', param });
      expect(error.message).toContain(`'${param}'`);
    }
    const legacy = await apiError(client.completions.create({ model: 'gitblock-tiny', prompt: 'Hi', suffix: 'there' }));
    expect(legacy).toMatchObject({ status: 400, param: 'suffix' });
    // Values that ask for what the network does not do are refused too.
    for (const [param, extra] of [['n', { n: 2 }], ['store', { store: true }], ['service_tier', { service_tier: 'flex' }]] as const) {
      expect(await apiError(client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, ...extra } as never))).toMatchObject({ status: 400, param });
    }
  });

  it('accepts what has no effect on the answer (user, metadata, null for not given)', async () => {
    const answer = await client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 4, temperature: 0, user: 'u-1', metadata: { a: 'b' }, store: false, seed: null, stop: null });
    expect(answer.choices[0]!.message.content!.length).toBeGreaterThan(0);
  });

  it('400s a logit_bias this model cannot apply, naming logit_bias', async () => {
    for (const bias of [{ '9999999': 5 }, { '260': 5 }, { '1': 101 }, { x: 1 }]) {
      const error = await apiError(client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 4, logit_bias: bias }));
      expect(error).toMatchObject({ status: 400, param: expect.stringMatching(/^logit_bias/) });
    }
  });
});

describe('structured output: response_format, enforced by a grammar on the node', () => {
  const schema = {
    type: 'object',
    properties: {
      answer: { type: 'string', enum: ['yes', 'no', 'maybe'] },
      confidence: { anyOf: [{ type: 'boolean' }, { type: 'null' }] },
      reasons: { type: 'array', items: { type: 'string', maxLength: 16 }, minItems: 1, maxItems: 2 },
      detail: { type: 'object', properties: { place: { type: 'string', maxLength: 12 } }, required: ['place'], additionalProperties: false },
    },
    required: ['answer', 'confidence', 'reasons', 'detail'],
    additionalProperties: false,
  };
  const format = { type: 'json_schema' as const, json_schema: { name: 'verdict', strict: true, schema } };

  it('answers json_schema with JSON that parses and validates against the schema, greedy, sampled and streamed', async () => {
    const validate = z.fromJSONSchema(schema as never);
    for (const sampling of [{ temperature: 0 }, { temperature: 0.9, seed: 3 }, { temperature: 1.3, seed: 8, top_p: 0.9 }]) {
      const answer = await client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 300, response_format: format, ...sampling });
      const content = answer.choices[0]!.message.content!;
      expect(answer.choices[0]!.finish_reason, content).toBe('stop');
      expect(validate.safeParse(JSON.parse(content)).success, content).toBe(true);
    }
    const stream = await client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 300, response_format: format, temperature: 0, stream: true });
    let streamed = '';
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? '';
    expect(validate.safeParse(JSON.parse(streamed)).success, streamed).toBe(true);
  });

  it('answers json_object with a JSON object', async () => {
    const answer = await client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 8, temperature: 0, response_format: { type: 'json_object' } });
    expect(answer.choices[0]!.message.content!.startsWith('{')).toBe(true);
  });

  it('400s a schema keyword the grammar could not enforce, naming where it is', async () => {
    const bad = { type: 'object', properties: { code: { type: 'string', pattern: '^[A-Z]+$' } } };
    const error = await apiError(client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: bad } } }));
    expect(error).toMatchObject({ status: 400, code: 'invalid_body', param: 'response_format.json_schema.schema' });
    expect(error.message).toMatch(/\/properties\/code: 'pattern' is not supported/);
    const unknownType = await apiError(client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, response_format: { type: 'xml' } as never }));
    expect(unknownType).toMatchObject({ status: 400, param: 'response_format.type' });
  });
});

describe('logprobs, from the node’s own distribution', () => {
  it('chat: one entry per token, making up the content, each greedy token the most probable, streamed and not', async () => {
    const answer = await client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 16, temperature: 0, logprobs: true, top_logprobs: 3 });
    const content = answer.choices[0]!.message.content!;
    const entries = answer.choices[0]!.logprobs!.content!;
    expect(entries.map((e) => e.token).join('')).toBe(content);
    expect(answer.usage!.completion_tokens).toBe(entries.length);
    for (const e of entries) {
      expect(e.top_logprobs).toHaveLength(3);
      expect(e.top_logprobs[0]).toMatchObject({ token: e.token, logprob: e.logprob });
      expect(e.bytes).toEqual([...Buffer.from(e.token)]);
      expect(e.logprob).toBeLessThanOrEqual(0);
    }
    const stream = await client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 16, temperature: 0, logprobs: true, top_logprobs: 3, stream: true });
    let text = '';
    const streamed: typeof entries = [];
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      streamed.push(...(chunk.choices[0]?.logprobs?.content ?? []));
    }
    expect(text).toBe(content);
    expect(streamed).toEqual(entries);
  });

  it('chat: without top_logprobs, the chosen tokens only; without logprobs, null', async () => {
    const answer = await client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 6, temperature: 0.8, seed: 1, logprobs: true });
    for (const e of answer.choices[0]!.logprobs!.content!) expect(e.top_logprobs).toEqual([]);
    const plain = await client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, max_tokens: 6 });
    expect(plain.choices[0]!.logprobs).toBeNull();
  });

  it('legacy completions: tokens, token_logprobs, top_logprobs and text offsets', async () => {
    const answer = await client.completions.create({ model: 'gitblock-tiny', prompt: 'The people of the earth', max_tokens: 8, temperature: 0, logprobs: 2 });
    const { tokens, token_logprobs, top_logprobs, text_offset } = answer.choices[0]!.logprobs!;
    expect(tokens!.join('')).toBe(answer.choices[0]!.text);
    expect(token_logprobs).toHaveLength(tokens!.length);
    tokens!.forEach((token, i) => {
      expect(Object.keys(top_logprobs![i]!)).toContain(token);
      expect(Math.max(...Object.values(top_logprobs![i]!))).toBe(token_logprobs![i]);
      expect(text_offset![i]).toBe(tokens!.slice(0, i).join('').length);
    });
  });

  it('400s what it cannot give: top_logprobs without logprobs, or more log-probabilities than one answer carries', async () => {
    expect(await apiError(client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, top_logprobs: 2 }))).toMatchObject({ status: 400, param: 'top_logprobs' });
    expect(await apiError(client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, logprobs: true, top_logprobs: 21 }))).toMatchObject({ status: 400, param: 'top_logprobs' });
    const tooMany = await apiError(client.chat.completions.create({ model: 'gitblock-tiny', messages: ask, logprobs: true, top_logprobs: 20, max_tokens: 2000 }));
    expect(tooMany).toMatchObject({ status: 400, param: 'top_logprobs' });
    expect(tooMany.message).toMatch(/42000 log-probabilities; the limit is 32768/);
  });
});

describe('tool calling in OpenAI’s shape, with the model’s own function-calling syntax', () => {
  const tools: OpenAI.Chat.Completions.ChatCompletionFunctionTool[] = [
    {
      type: 'function',
      function: {
        name: 'get_weather',
        description: 'The weather in a city',
        parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 12 }, unit: { enum: ['c', 'f'] } }, required: ['city', 'unit'], additionalProperties: false },
      },
    },
    { type: 'function', function: { name: 'get_time', description: 'The time now', parameters: { type: 'object', properties: {} } } },
  ];
  const question = [{ role: 'user' as const, content: 'What is the weather in Paris?' }];
  const validate = z.fromJSONSchema(tools[0]!.function.parameters as never);

  /** The turn after the calls: each call answered by a tool message. */
  const withResults = (calls: OpenAI.Chat.Completions.ChatCompletionMessageToolCall[]): OpenAI.Chat.Completions.ChatCompletionMessageParam[] => [
    ...question,
    { role: 'assistant', content: null, tool_calls: calls },
    ...calls.map((c) => ({ role: 'tool' as const, tool_call_id: c.id, content: JSON.stringify({ temperature: 21, sky: 'clear' }) })),
  ];

  it('round trip, not streamed: a required call with arguments valid for its schema, the tool’s result, then the answer', async () => {
    const first = await client.chat.completions.create({ model: 'gitblock-tiny', messages: question, tools, tool_choice: { type: 'function', function: { name: 'get_weather' } }, temperature: 0.8, seed: 2, max_tokens: 120 });
    const choice = first.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    const calls = choice.message.tool_calls as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall[];
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ type: 'function', function: { name: 'get_weather' } });
    expect(calls[0]!.id).toMatch(/^call_/);
    expect(validate.safeParse(JSON.parse(calls[0]!.function.arguments)).success, calls[0]!.function.arguments).toBe(true);

    const second = await client.chat.completions.create({ model: 'gitblock-tiny', messages: withResults(calls), tools, tool_choice: 'none', temperature: 0, max_tokens: 16 });
    expect(second.choices[0]!.finish_reason).toBe('length');
    expect(second.choices[0]!.message.content!.length).toBeGreaterThan(0);
    expect(second.choices[0]!.message.tool_calls ?? []).toEqual([]);
  });

  it('round trip, streamed: the calls arrive as tool_calls deltas, never as content', async () => {
    const stream = await client.chat.completions.create({ model: 'gitblock-tiny', messages: question, tools, tool_choice: 'required', parallel_tool_calls: false, temperature: 0, max_tokens: 120, stream: true });
    let content = '';
    let finish: string | null | undefined;
    const calls: { id?: string; type?: string; function: { name: string; arguments: string } }[] = [];
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta;
      content += delta?.content ?? '';
      for (const call of delta?.tool_calls ?? []) {
        calls[call.index] ??= { function: { name: '', arguments: '' } };
        const into = calls[call.index]!;
        if (call.id) into.id = call.id;
        if (call.type) into.type = call.type;
        into.function.name += call.function?.name ?? '';
        into.function.arguments += call.function?.arguments ?? '';
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(content.trim()).toBe('');
    expect(finish).toBe('tool_calls');
    expect(calls).toHaveLength(1);
    expect(['get_weather', 'get_time']).toContain(calls[0]!.function.name);
    JSON.parse(calls[0]!.function.arguments);

    const answer = await client.chat.completions.create({
      model: 'gitblock-tiny',
      messages: withResults(calls as OpenAI.Chat.Completions.ChatCompletionMessageToolCall[]),
      tools,
      temperature: 0,
      max_tokens: 16,
      stream: true,
    });
    let text = '';
    for await (const chunk of answer) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text.length).toBeGreaterThan(0);
  });

  it('400s tool messages and choices that do not fit the chat, naming the parameter', async () => {
    const orphan = await apiError(client.chat.completions.create({ model: 'gitblock-tiny', messages: [...question, { role: 'tool', tool_call_id: 'nope', content: '1' }], tools }));
    expect(orphan).toMatchObject({ status: 400, param: 'messages.1.tool_call_id' });
    const unanswered = await apiError(
      client.chat.completions.create({ model: 'gitblock-tiny', messages: [...question, { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_time', arguments: '{}' } }] }], tools }),
    );
    expect(unanswered).toMatchObject({ status: 400, param: 'messages.1.tool_calls.0' });
    expect(await apiError(client.chat.completions.create({ model: 'gitblock-tiny', messages: question, tools, tool_choice: { type: 'function', function: { name: 'nope' } } }))).toMatchObject({
      status: 400,
      param: 'tool_choice.function.name',
    });
    expect(await apiError(client.chat.completions.create({ model: 'gitblock-tiny', messages: question, tool_choice: 'required' }))).toMatchObject({ status: 400, param: 'tool_choice' });
    const badSchema = [{ type: 'function' as const, function: { name: 'f', parameters: { type: 'object', properties: { n: { type: 'number', minimum: 1 } } } } }];
    expect(await apiError(client.chat.completions.create({ model: 'gitblock-tiny', messages: question, tools: badSchema }))).toMatchObject({ status: 400, param: 'tools.0.function.parameters' });
    expect(await apiError(client.chat.completions.create({ model: 'gitblock-tiny', messages: question, tools, response_format: { type: 'json_object' } }))).toMatchObject({ status: 400, param: 'response_format' });
  });
});
