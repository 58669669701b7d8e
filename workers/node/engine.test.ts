import { getLlama, type Llama, type Token } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { z } from 'zod';
import type { ChatMessage, Sampling, ToolSpec } from '../../domain/inference.ts';
import { normalizeJsonSchema } from '../../domain/json-schema.ts';
import { EngineError } from '../../domain/engine.ts';
import { ModelEngine } from './engine.ts';

describe('ModelEngine on the fixture model', () => {
  let llama: Llama;
  let engine: ModelEngine;
  const greedy = { temperature: 0, maxTokens: 40 };

  beforeAll(async () => {
    llama = await getLlama({ gpu: false });
    engine = await ModelEngine.load(llama, { modelId: 'gitblock-tiny', modelPath: inject('fixtureModelPath'), contextSize: 512, sequences: 2, threads: 1 });
  });
  afterAll(async () => {
    await engine[Symbol.asyncDispose]();
  });

  const prompt = () => engine.renderChat([{ role: 'user', content: 'Tell me a story about a boat.' }]);

  it('renders a chat with the model template and generates deterministically when greedy', async () => {
    const a = await engine.generate({ promptTokens: prompt(), sampling: greedy });
    const b = await engine.generate({ promptTokens: prompt(), sampling: greedy });
    expect(a.tokens.length).toBeGreaterThan(0);
    expect(a.tokens).toEqual(b.tokens);
    expect(a.text).toBe(b.text);
    expect(engine.detokenize(a.tokens)).toBe(a.text);
  });

  it('continues from a delivered prefix exactly as an uninterrupted generation would', async () => {
    const whole = await engine.generate({ promptTokens: prompt(), sampling: greedy });
    expect(whole.finishReason).toBe('length');
    const k = 13;
    const rest = await engine.generate({ promptTokens: prompt(), prefixTokens: whole.tokens.slice(0, k), sampling: greedy });
    expect([...whole.tokens.slice(0, k), ...rest.tokens]).toEqual(whole.tokens);
    expect(engine.detokenize(whole.tokens.slice(0, k)) + rest.text).toBe(whole.text);
  });

  it('streams text pieces that add up to the whole answer', async () => {
    const pieces: string[] = [];
    const result = await engine.generate({ promptTokens: prompt(), sampling: { temperature: 0.8, seed: 7, maxTokens: 30 }, onToken: (_t, text) => pieces.push(text) });
    expect(pieces.length).toBe(result.tokens.length);
    expect(pieces.join('')).toBe(result.text);
  });

  it('stops at a stop string, never releasing it or anything after it', async () => {
    const whole = await engine.generate({ promptTokens: prompt(), sampling: greedy });
    const words = whole.text.trim().split(/\s+/);
    const stop = ` ${words[3]}`;
    const pieces: string[] = [];
    const stopped = await engine.generate({ promptTokens: prompt(), sampling: { ...greedy, stop: [stop] }, onToken: (_t, text) => pieces.push(text) });
    expect(stopped.finishReason).toBe('stop');
    expect(stopped.text).toBe(whole.text.slice(0, whole.text.indexOf(stop)));
    expect(pieces.join('')).toBe(stopped.text);
  });

  /** A stop string that never occurs but starts with the answer's last character, so the end is held back. */
  async function heldAtEnd() {
    const plain = await engine.generate({ promptTokens: prompt(), sampling: greedy });
    const stop = `${plain.text.at(-1)}|`;
    expect(plain.text).not.toContain('|');
    return { plain, sampling: { ...greedy, stop: [stop] } };
  }

  it('releases text held back at the end as text only: the streamed tokens are exactly the answer', async () => {
    const { plain, sampling } = await heldAtEnd();
    const streamed: Token[] = [];
    const pieces: string[] = [];
    const tails: string[] = [];
    const result = await engine.generate({
      promptTokens: prompt(),
      sampling,
      onToken: (t, text) => {
        streamed.push(t);
        pieces.push(text);
      },
      onText: (text) => {
        tails.push(text);
        pieces.push(text);
      },
    });
    expect(result.finishReason).toBe('length');
    expect(result.text).toBe(plain.text);
    expect(streamed).toEqual(result.tokens);
    expect(pieces.join('')).toBe(result.text);
    expect(tails).toEqual([plain.text.at(-1)]); // the held path really ran
  });

  it('continues after a prefix whose text was partly held back, releasing that text', async () => {
    const { plain, sampling } = await heldAtEnd();
    const pieces: string[] = [];
    const whole = await engine.generate({ promptTokens: prompt(), sampling, onToken: (_t, text) => pieces.push(text) });
    // The last cut before the end after which the released text falls short of what the tokens decode to.
    const k = whole.tokens.findLastIndex((_, i) => i > 0 && pieces.slice(0, i).join('').length < engine.detokenize(whole.tokens.slice(0, i)).length);
    expect(k).toBeGreaterThan(1);
    const delivered = pieces.slice(0, k).join('');
    const rest = await engine.generate({ promptTokens: prompt(), prefixTokens: whole.tokens.slice(0, k), prefixText: delivered, sampling });
    expect([...whole.tokens.slice(0, k), ...rest.tokens]).toEqual(whole.tokens);
    expect(delivered + rest.text).toBe(plain.text);
  });

  it('continues after a prefix that ends inside a UTF-8 character, decoding it with what follows', async () => {
    const words = (await engine.generate({ promptTokens: prompt(), sampling: { ...greedy, maxTokens: 6 } })).tokens;
    const euro = engine.model.tokenize(' €', false); // space token(s), then the three bytes of €
    const complete = [...words, ...euro.slice(0, -3)];
    const prefix = [...complete, ...euro.slice(-3, -1)];
    const rest = await engine.generate({ promptTokens: prompt(), prefixTokens: prefix, prefixText: engine.detokenize(complete), sampling: { ...greedy, maxTokens: 20 } });
    expect(rest.tokens.length).toBeGreaterThan(0);
    expect(engine.detokenize(complete) + rest.text).toBe(engine.detokenize([...prefix, ...rest.tokens]));
  });

  it('stops within one token of a cancellation', async () => {
    const abort = new AbortController();
    let seen = 0;
    const run = engine.generate({
      promptTokens: prompt(),
      sampling: { temperature: 0, maxTokens: 400 },
      signal: abort.signal,
      onToken: () => {
        if (++seen === 5) abort.abort();
      },
    });
    await expect(run).rejects.toMatchObject({ code: 'ABORTED' });
    expect(seen).toBe(5);
    expect(engine.freeSequences).toBe(2);
  });

  it('refuses a prompt plus max_tokens beyond the context, with the numbers', async () => {
    const long = Array.from({ length: 500 }, () => 1 as Token);
    await expect(engine.generate({ promptTokens: long, sampling: { temperature: 0, maxTokens: 100 } })).rejects.toThrow(
      new EngineError('PROMPT_TOO_LONG', "prompt (500 tokens) + max_tokens (100) exceeds this model's context of 512 tokens"),
    );
  });

  it('runs two generations at once on separate sequences with the same results as alone', async () => {
    const alone = await engine.generate({ promptTokens: prompt(), sampling: greedy });
    const [a, b] = await Promise.all([engine.generate({ promptTokens: prompt(), sampling: greedy }), engine.generate({ promptTokens: prompt(), sampling: greedy })]);
    expect(a.tokens).toEqual(alone.tokens);
    expect(b.tokens).toEqual(alone.tokens);
  });

  describe('constraints: penalties, logit_bias and a response format grammar', () => {
    it('applies presence and frequency penalties over the answer so far, changing a greedy answer that repeats itself', async () => {
      const repeats = engine.renderChat([{ role: 'user', content: 'Tell me about the mountains and the sea.' }]);
      const plain = await engine.generate({ promptTokens: repeats, sampling: greedy });
      expect(new Set(plain.tokens).size).toBeLessThan(plain.tokens.length); // here the fixture repeats itself
      for (const penalty of [{ frequencyPenalty: 2 }, { presencePenalty: 2 }]) {
        const penalised = await engine.generate({ promptTokens: repeats, sampling: { ...greedy, ...penalty } });
        expect(penalised.tokens).not.toEqual(plain.tokens);
        // Up to the first repeat, nothing was penalised yet.
        const firstRepeat = plain.tokens.findIndex((t, i) => plain.tokens.indexOf(t) < i);
        expect(penalised.tokens.slice(0, firstRepeat)).toEqual(plain.tokens.slice(0, firstRepeat));
      }
    });

    it('adds logit_bias to the logits: -100 bans a token, +100 forces one', async () => {
      const plain = await engine.generate({ promptTokens: prompt(), sampling: greedy });
      const banned = plain.tokens[0]!;
      const without = await engine.generate({ promptTokens: prompt(), sampling: { ...greedy, logitBias: { [banned]: -100 } } });
      expect(without.tokens).not.toContain(banned);
      const forced = plain.tokens.at(-1)!;
      const only = await engine.generate({ promptTokens: prompt(), sampling: { ...greedy, maxTokens: 5, logitBias: { [forced]: 100 } } });
      expect(only.tokens).toEqual(Array(5).fill(forced));
    });

    it('refuses a bias it cannot apply, naming logit_bias', async () => {
      const eos = engine.model.tokens.eos!;
      await expect(engine.generate({ promptTokens: prompt(), sampling: { ...greedy, logitBias: { [eos]: 5 } } })).rejects.toMatchObject({ code: 'BAD_INPUT', param: 'logit_bias' });
      await expect(engine.generate({ promptTokens: prompt(), sampling: { ...greedy, logitBias: { '999999': 5 } } })).rejects.toMatchObject({ code: 'BAD_INPUT', param: 'logit_bias', message: /not a token id/ });
    });

    const schema: z.core.JSONSchema.JSONSchema = {
      type: 'object',
      properties: { color: { enum: ['red', 'green', 'blue'] }, ok: { type: 'boolean' }, name: { type: 'string', maxLength: 12 }, tags: { type: 'array', items: { type: 'string', maxLength: 6 }, maxItems: 2 } },
      required: ['color', 'ok', 'name', 'tags'],
      additionalProperties: false,
    };
    const json: Sampling['grammar'] = { type: 'json_schema', schema: normalizeJsonSchema(schema) };

    it('answers a json_schema response format with JSON that validates, greedy and sampled, ending at the grammar’s end', async () => {
      for (const sampling of [{ temperature: 0, maxTokens: 200 }, { temperature: 0.9, seed: 4, maxTokens: 200 }, { temperature: 1.2, seed: 11, topK: 100, maxTokens: 200 }]) {
        const pieces: string[] = [];
        const answer = await engine.generate({ promptTokens: prompt(), sampling: { ...sampling, grammar: json }, onToken: (_t, text) => pieces.push(text), onText: (text) => pieces.push(text) });
        expect(answer.finishReason).toBe('stop');
        expect(pieces.join('')).toBe(answer.text);
        expect(z.fromJSONSchema(schema).safeParse(JSON.parse(answer.text)).success, answer.text).toBe(true);
        expect(answer.text).toBe(answer.text.trim());
      }
    });

    it('answers a json_object response format with a JSON object', async () => {
      const answer = await engine.generate({ promptTokens: prompt(), sampling: { temperature: 0, maxTokens: 300, grammar: { type: 'json' }, logitBias: { [engine.model.tokenize('"')[0]!]: 4 } } });
      expect(answer.text.startsWith('{')).toBe(true);
      if (answer.finishReason === 'stop') expect(typeof JSON.parse(answer.text)).toBe('object');
    });

    it('continues a constrained answer from a delivered prefix exactly as an uninterrupted generation would', async () => {
      const sampling: Sampling = { temperature: 0, maxTokens: 200, grammar: json, frequencyPenalty: 0.5 };
      const whole = await engine.generate({ promptTokens: prompt(), sampling });
      const k = Math.floor(whole.tokens.length / 2);
      const rest = await engine.generate({ promptTokens: prompt(), prefixTokens: whole.tokens.slice(0, k), sampling });
      expect([...whole.tokens.slice(0, k), ...rest.tokens]).toEqual(whole.tokens);
    });

    it('refuses to continue a delivered prefix that breaks the grammar', async () => {
      const prose = await engine.generate({ promptTokens: prompt(), sampling: { ...greedy, maxTokens: 3 } });
      await expect(engine.generate({ promptTokens: prompt(), prefixTokens: prose.tokens, sampling: { ...greedy, grammar: json } })).rejects.toMatchObject({ code: 'BAD_INPUT', param: 'response_format' });
    });

    it('walks a grammar token by token (the node-llama-cpp internals a continuation and a verifier rely on)', async () => {
      const walk = (await engine.constraintsFor({ ...greedy, grammar: { type: 'json' } })).startGrammar()!;
      const [brace] = engine.model.tokenize('{', false, 'trimLeadingSpace');
      const [word] = engine.model.tokenize('the', false, 'trimLeadingSpace');
      expect(walk.allows(brace!)).toBe(true);
      expect(walk.allows(word!)).toBe(false);
      expect(walk.allows(engine.model.tokens.eos!)).toBe(false);
      const copy = walk.clone();
      walk.accept(brace!);
      expect(walk.allows(brace!)).toBe(false);
      expect(copy.allows(brace!)).toBe(true);
    });
  });

  describe('log-probabilities, from the distribution each token was drawn from', () => {
    const logprobs = async (sampling: Sampling, top: number) => {
      const answer = await engine.generate({ promptTokens: prompt(), sampling, logprobs: { top } });
      return { answer, entries: answer.logprobs! };
    };

    it('gives one per token whose texts make up the answer, greedy: each token the top one', async () => {
      const { answer, entries } = await logprobs({ ...greedy, maxTokens: 20 }, 3);
      expect(entries).toHaveLength(answer.tokens.length);
      expect(entries.map(([text]) => text).join('')).toBe(answer.text);
      for (const [text, logprob, top] of entries) {
        expect(top).toHaveLength(3);
        expect(top![0]).toEqual([text, logprob]);
        expect(top!.map(([, lp]) => lp)).toEqual([...top!.map(([, lp]) => lp)].sort((a, b) => b - a));
        expect(top!.reduce((sum, [, lp]) => sum + Math.exp(lp), 0)).toBeLessThanOrEqual(1 + 1e-4);
      }
    });

    it('sampled: each token possible under the sampler, its logprob among the alternatives where it ranks among them', async () => {
      const { answer, entries } = await logprobs({ temperature: 0.9, seed: 5, maxTokens: 20 }, 20);
      expect(entries.map(([text]) => text).join('')).toBe(answer.text);
      for (const [text, logprob, top] of entries) {
        expect(logprob).toBeGreaterThan(-Infinity);
        expect(logprob).toBeLessThanOrEqual(1e-6);
        const listed = top!.find(([t]) => t === text);
        if (listed) expect(listed[1]).toBeCloseTo(logprob, 4);
        else expect(logprob).toBeLessThanOrEqual(top!.at(-1)![1]);
      }
    });

    it('gives none for a stop string’s tokens, which the text leaves out', async () => {
      const whole = await engine.generate({ promptTokens: prompt(), sampling: greedy });
      const stop = ` ${whole.text.trim().split(/\s+/)[3]}`;
      const { answer, entries } = await logprobs({ ...greedy, stop: [stop] }, 0);
      expect(entries.length).toBeLessThan(answer.tokens.length);
      expect(entries.map(([text]) => text).join('')).toBe(answer.text);
      expect(entries.every((e) => e.length === 2)).toBe(true);
    });

    it('reads a continued answer’s prefix back by teacher forcing, as generation gave it', async () => {
      const sampling: Sampling = { temperature: 0.8, seed: 9, maxTokens: 24, frequencyPenalty: 0.7 };
      const { answer, entries } = await logprobs(sampling, 4);
      const k = 9;
      const rest = await engine.generate({ promptTokens: prompt(), prefixTokens: answer.tokens.slice(0, k), sampling, logprobs: { top: 4 } });
      // A sampled continuation draws anew after the prefix; the prefix's entries are the original's.
      expect(rest.logprobs).toHaveLength(k + rest.tokens.length);
      rest.logprobs!.slice(0, k).forEach(([text, logprob, top], i) => {
        expect(text).toBe(entries[i]![0]);
        expect(logprob).toBeCloseTo(entries[i]![1], 3);
        expect(top!.map(([t]) => t)).toEqual(entries[i]![2]!.map(([t]) => t));
      });
    });
  });

  describe('tool calls, in the model’s own function-calling syntax', () => {
    // The template's instructions for calling functions take some 500 of the fixture's tokens.
    let engine: ModelEngine;
    beforeAll(async () => {
      engine = await ModelEngine.load(llama, { modelId: 'gitblock-tiny', modelPath: inject('fixtureModelPath'), contextSize: 1024, sequences: 1, threads: 1 });
    });
    afterAll(async () => {
      await engine[Symbol.asyncDispose]();
    });
    const tools: ToolSpec[] = [
      { name: 'get_weather', description: 'The weather in a city', parameters: normalizeJsonSchema({ type: 'object', properties: { city: { type: 'string', maxLength: 10 } } }) },
      { name: 'get_time', parameters: normalizeJsonSchema({ type: 'object', properties: {} }) },
    ];
    const callGrammar = (parallel: boolean): Sampling['grammar'] => ({ type: 'tool_calls', tools: tools.map((t) => ({ name: t.name, parameters: t.parameters })), parallel });
    const question: ChatMessage[] = [{ role: 'user', content: 'What is the weather in Paris?' }];

    it('documents the tools in the prompt, and renders a call with its result inside the model’s turn, to go on from', () => {
      const prompt = engine.detokenize(engine.renderChat(question, tools));
      expect(prompt).toContain('get_weather');
      const after = engine.detokenize(
        engine.renderChat([...question, { role: 'assistant', content: '', toolCalls: [{ id: 'c1', name: 'get_weather', arguments: '{"city":"Paris"}' }] }, { role: 'tool', toolCallId: 'c1', content: '{"temp":21}' }], tools),
      );
      expect(after).toMatch(/get_weather[\s\S]*Paris[\s\S]*"temp": ?21\}\s*$/);
    });

    it('answers a required call with one call, or several, each parsing to a known tool with JSON arguments', async () => {
      for (const [parallel, sampling] of [[false, { temperature: 0.9, seed: 2 }], [true, { temperature: 1.1, seed: 7 }], [false, { temperature: 0 }]] as const) {
        const answer = await engine.generate({ promptTokens: engine.renderChat(question, tools), sampling: { ...sampling, maxTokens: 150, grammar: callGrammar(parallel) }, hold: engine.toolCallMarker });
        expect(answer.text.trim()).toBe(''); // everything was the calls, withheld from the stream
        const decoded = engine.detokenize(answer.tokens);
        const calls = engine.parseToolCalls(decoded.slice(decoded.indexOf(engine.toolCallMarker)), tools);
        expect(calls, decoded).toBeDefined();
        if (!parallel) expect(calls).toHaveLength(1);
        for (const call of calls!) expect(typeof JSON.parse(call.arguments)).toBe('object');
      }
    });

    it('withholds text from a call marker on, releasing what came before, also across a continuation', async () => {
      const marker = engine.toolCallMarker;
      // An earlier attempt had written this, and released the text before the call.
      const said = engine.model.tokenize(`Let me check. ${marker} get_time({})`, false);
      const rest = await engine.generate({ promptTokens: engine.renderChat(question, tools), prefixTokens: said, prefixText: 'Let me check.', sampling: { ...greedy, maxTokens: said.length + 5 }, hold: marker });
      expect(rest.text).toBe(' ');
      const decoded = engine.detokenize(said);
      expect(engine.parseToolCalls(decoded.slice(decoded.indexOf(marker)), tools)).toEqual([{ name: 'get_time', arguments: '{}' }]);
    });
  });
});
