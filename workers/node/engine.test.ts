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
});
