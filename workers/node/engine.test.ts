import { getLlama, type Llama, type Token } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { EngineError, ModelEngine } from './engine.ts';

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
});
