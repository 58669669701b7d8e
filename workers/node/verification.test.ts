/**
 * Teacher-forcing checks on the fixture model: honest answers pass (no false alarm over a few
 * hundred checks, greedy and sampled), and answers that lie are caught: random tokens, a
 * truncated answer, and an answer from a different model.
 */
import { dirname, join } from 'node:path';
import { getLlama, type Llama, type Token } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import type { ChatMessage, Sampling, ToolSpec } from '../../domain/inference.ts';
import { normalizeJsonSchema } from '../../domain/json-schema.ts';
import { judge, type VerifierReport } from '../../domain/verification.ts';
import { generateImpostorModel } from '../../models/fixture/tiny-llama.ts';
import { ModelEngine } from './engine.ts';

let llama: Llama;
let honest: ModelEngine;
let verifier: ModelEngine;
let impostor: ModelEngine;

beforeAll(async () => {
  llama = await getLlama({ gpu: false });
  const path = inject('fixtureModelPath');
  const fake = await generateImpostorModel(join(dirname(path), 'gitblock-tiny-impostor.gguf'));
  const load = (modelPath: string) => ModelEngine.load(llama, { modelId: 'gitblock-tiny', modelPath, contextSize: 1024, sequences: 1, threads: 1 });
  [honest, verifier, impostor] = [await load(path), await load(path), await load(fake.path)];
});
afterAll(async () => {
  for (const e of [honest, verifier, impostor]) await e[Symbol.asyncDispose]();
});

const tools: ToolSpec[] = [
  { name: 'get_weather', description: 'The weather in a city', parameters: normalizeJsonSchema({ type: 'object', properties: { city: { type: 'string', maxLength: 12 }, unit: { enum: ['c', 'f'] } } }) },
  { name: 'get_time', parameters: normalizeJsonSchema({ type: 'object', properties: {} }) },
];

const prompts = ['Tell me about the sea.', 'What is a mountain?', 'Write about a small boat.', 'Why do birds sing?', 'Describe a city at night.'];

async function check(promptTokens: Token[], tokens: Token[], sampling: Sampling, finishReason: 'stop' | 'length' = 'length') {
  const scored = await verifier.score(promptTokens, tokens, sampling);
  const report: VerifierReport = { verifierNodeId: 'v', ...scored, checkMs: 0 };
  return judge({ sampling, finishReason, tokenCount: tokens.length }, report);
}

describe('teacher-forcing verification', () => {
  it('passes honest answers: no false alarm over 300 checks, greedy and sampled', async () => {
    const failures: string[] = [];
    for (let i = 0; i < 300; i++) {
      const sampling: Sampling = i % 3 === 0 ? { temperature: 0, maxTokens: 24 } : { temperature: [0.7, 1, 1.3][i % 3]!, topK: i % 2 ? 40 : undefined, topP: i % 5 ? 0.9 : undefined, seed: i, maxTokens: 24 };
      const prompt = honest.renderChat([{ role: 'user', content: `${prompts[i % prompts.length]} (${i})` }]);
      const answer = await honest.generate({ promptTokens: prompt, sampling });
      const verdict = await check(prompt, answer.tokens, sampling, answer.finishReason);
      if (!verdict.passed) failures.push(`#${i} ${JSON.stringify(sampling)}: ${verdict.reason}`);
    }
    expect(failures).toEqual([]);
  }, 120_000);

  it('passes honest constrained answers: no false alarm over 300 checks under a JSON schema, json_object, required tool calls, penalties and logit_bias', async () => {
    const schema = normalizeJsonSchema({ type: 'object', properties: { answer: { enum: ['yes', 'no'] }, why: { type: 'string', maxLength: 20 }, score: { type: 'integer' } } });
    const calls: Sampling['grammar'] = { type: 'tool_calls', tools: tools.map((t) => ({ name: t.name, parameters: t.parameters })), parallel: true };
    const constraints: Partial<Sampling>[] = [
      { grammar: { type: 'json_schema', schema } },
      { grammar: { type: 'json' } },
      { frequencyPenalty: 1.5, presencePenalty: 0.5 },
      { logitBias: { '1072': -100, '1180': 3 } },
      { grammar: { type: 'json_schema', schema }, frequencyPenalty: 0.8, logitBias: { '300': 2 } },
      { grammar: calls },
    ];
    const failures: string[] = [];
    for (let i = 0; i < 300; i++) {
      const base: Sampling = i % 3 === 0 ? { temperature: 0, maxTokens: 32 } : { temperature: [0.7, 1, 1.3][i % 3]!, topK: i % 2 ? 40 : undefined, topP: i % 5 ? 0.9 : undefined, seed: i, maxTokens: 32 };
      const sampling: Sampling = { ...base, ...constraints[i % constraints.length] };
      const messages: ChatMessage[] = [{ role: 'user', content: `${prompts[i % prompts.length]} (${i})` }];
      const prompt = sampling.grammar?.type === 'tool_calls' ? honest.renderChat(messages, tools) : honest.renderChat(messages);
      const answer = await honest.generate({ promptTokens: prompt, sampling });
      const verdict = await check(prompt, answer.tokens, sampling, answer.finishReason);
      if (!verdict.passed) failures.push(`#${i} ${JSON.stringify(sampling).slice(0, 160)}: ${verdict.reason}`);
    }
    expect(failures).toEqual([]);
  }, 300_000);

  it('catches a tool call answer generated without the call grammar it claims', async () => {
    const claimed: Sampling = { temperature: 0, maxTokens: 40, grammar: { type: 'tool_calls', tools: tools.map((t) => ({ name: t.name, parameters: t.parameters })), parallel: false } };
    const prompt = honest.renderChat([{ role: 'user', content: prompts[0]! }], tools);
    const prose = await honest.generate({ promptTokens: prompt, sampling: { temperature: 0, maxTokens: 40 } });
    expect(await check(prompt, prose.tokens, claimed, prose.finishReason)).toMatchObject({ passed: false, fault: 'constraint' });
  });

  it('catches an answer generated without the grammar it claims, greedy and sampled', async () => {
    const schema = normalizeJsonSchema({ type: 'object', properties: { answer: { enum: ['yes', 'no'] } } });
    for (const [i, base] of [{ temperature: 0, maxTokens: 24 }, { temperature: 0.8, seed: 2, maxTokens: 24 }].entries()) {
      const prompt = honest.renderChat([{ role: 'user', content: prompts[i]! }]);
      const claimed: Sampling = { ...base, grammar: { type: 'json_schema', schema } };
      // Prose, and JSON of another shape: neither follows this schema's grammar.
      const prose = await honest.generate({ promptTokens: prompt, sampling: base });
      const other = await honest.generate({ promptTokens: prompt, sampling: { ...base, grammar: { type: 'json' } } });
      for (const answer of [prose, other]) {
        const verdict = await check(prompt, answer.tokens, claimed, answer.finishReason);
        expect(verdict, answer.text).toMatchObject({ passed: false, fault: 'constraint' });
      }
      // And an answer generated without the penalties it claims.
      const penalised: Sampling = { ...base, temperature: 0, frequencyPenalty: 2, maxTokens: 40 };
      const ignored = await honest.generate({ promptTokens: honest.renderChat([{ role: 'user', content: 'Tell me about the mountains and the sea.' }]), sampling: { ...penalised, frequencyPenalty: undefined } });
      const verdict = await check(honest.renderChat([{ role: 'user', content: 'Tell me about the mountains and the sea.' }]), ignored.tokens, penalised, ignored.finishReason);
      expect(verdict).toMatchObject({ passed: false, fault: 'mismatch' });
    }
  });

  it('catches random tokens', async () => {
    const prompt = honest.renderChat([{ role: 'user', content: prompts[0]! }]);
    let seed = 7;
    const random = Array.from({ length: 24 }, () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), 300 + (seed % 1400)) as Token);
    for (const sampling of [{ temperature: 0, maxTokens: 24 }, { temperature: 0.8, maxTokens: 24 }]) {
      const verdict = await check(prompt, random, sampling);
      expect(verdict.passed, JSON.stringify(verdict)).toBe(false);
    }
  });

  it('catches an answer cut short that claims to have ended', async () => {
    const prompt = honest.renderChat([{ role: 'user', content: prompts[1]! }]);
    for (const sampling of [{ temperature: 0, maxTokens: 40 }, { temperature: 0.8, seed: 3, maxTokens: 40 }]) {
      const answer = await honest.generate({ promptTokens: prompt, sampling });
      const verdict = await check(prompt, answer.tokens.slice(0, 12), sampling, 'stop');
      expect(verdict).toMatchObject({ passed: false, fault: 'truncated' });
    }
  });

  it('catches an answer from a different model', async () => {
    for (const [i, sampling] of [{ temperature: 0, maxTokens: 32 }, { temperature: 0.8, seed: 5, maxTokens: 32 }].entries()) {
      const prompt = honest.renderChat([{ role: 'user', content: prompts[i]! }]);
      const answer = await impostor.generate({ promptTokens: prompt, sampling });
      const verdict = await check(prompt, answer.tokens, sampling);
      expect(verdict.passed, JSON.stringify(verdict)).toBe(false);
    }
  });

  it('costs a prefill, well under the generation it checks', async () => {
    const prompt = honest.renderChat([{ role: 'user', content: prompts[2]! }]);
    const sampling = { temperature: 0, maxTokens: 128 };
    const t0 = performance.now();
    const answer = await honest.generate({ promptTokens: prompt, sampling });
    const generation = performance.now() - t0;
    const t1 = performance.now();
    await verifier.score(prompt, answer.tokens, sampling);
    const scoring = performance.now() - t1;
    console.log(`[verification] generation ${generation.toFixed(1)} ms, check ${scoring.toFixed(1)} ms (${((100 * scoring) / generation).toFixed(0)}%)`);
    expect(answer.tokens).toHaveLength(128);
  });
});
