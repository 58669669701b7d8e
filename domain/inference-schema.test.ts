import { describe, expect, it } from 'vitest';
import { inferResultSchema, verifierReportSchema } from './inference-schema.ts';

const input = { requestId: 'r1', modelId: 'gitblock-tiny', sampling: { maxTokens: 4 } };
const result = {
  requestId: 'r1',
  nodeId: 'node-a',
  modelId: 'gitblock-tiny',
  modelHash: 'ab'.repeat(32),
  text: 'hi',
  tokens: [1, 2],
  finishReason: 'stop',
  usage: { promptTokens: 3, completionTokens: 2, totalTokens: 5 },
  continuedFromTokens: 1,
  timings: { timeToFirstTokenMs: 1, tokensPerSecond: 2, totalMs: 3 },
};

describe('inferResultSchema', () => {
  const schema = inferResultSchema(input);

  it('accepts a well-formed result for this request', () => {
    expect(schema.safeParse(result).success).toBe(true);
  });

  it.each([
    ['another request', { requestId: 'r2' }],
    ['another model', { modelId: 'smollm2-135m' }],
    ['more tokens than max_tokens', { tokens: [1, 2, 3, 4, 5] }],
    ['a negative or fractional token id', { tokens: [1, -2] }],
    ['a continuation longer than the answer', { continuedFromTokens: 3 }],
    ['an unknown finish reason', { finishReason: 'eos' }],
    ['no usage', { usage: undefined }],
    ['a non-finite timing', { timings: { timeToFirstTokenMs: Number.NaN, tokensPerSecond: 1, totalMs: 1 } }],
    ['a malformed model hash', { modelHash: 'xyz' }],
  ])('refuses %s', (_what, change) => {
    expect(schema.safeParse({ ...result, ...change }).success).toBe(false);
  });

  it('requires logprobs when asked, one per token of the text at most, with no more alternatives than asked', () => {
    const asked = inferResultSchema({ ...input, logprobs: { top: 1 } });
    const entries = [['h', -0.1, [['h', -0.1]]], ['i', -0.2, [['i', -0.2]]]];
    expect(asked.safeParse({ ...result, logprobs: entries }).success).toBe(true);
    expect(asked.safeParse(result).success).toBe(false);
    expect(asked.safeParse({ ...result, logprobs: [...entries, ['!', -1]] }).success).toBe(false);
    expect(asked.safeParse({ ...result, logprobs: [['h', -0.1, [['h', -0.1], ['x', -3]]]] }).success).toBe(false);
    expect(asked.safeParse({ ...result, logprobs: [['h', 0.5]] }).success).toBe(false);
    expect(schema.safeParse({ ...result, logprobs: undefined }).success).toBe(true);
  });

  it('refuses what is not an object', () => {
    for (const value of [null, 'text', 42, []]) expect(schema.safeParse(value).success).toBe(false);
  });
});

describe('verifierReportSchema', () => {
  const report = { verifierNodeId: 'v', positions: [{ p: 0.5, rank: 1, pTop: 0.6, logQ: -0.7, entropy: 1, variance: 0.5 }], endProbability: 0.1, endRank: 2, stopStringSeen: false, grammarViolations: 0, checkMs: 4 };

  it('accepts a well-formed report, with a sampler-impossible position', () => {
    expect(verifierReportSchema.safeParse(report).success).toBe(true);
    expect(verifierReportSchema.safeParse({ ...report, positions: [{ ...report.positions[0], logQ: null }] }).success).toBe(true);
  });

  it('refuses probabilities out of range, missing fields and wrong types', () => {
    expect(verifierReportSchema.safeParse({ ...report, positions: [{ ...report.positions[0], p: 2 }] }).success).toBe(false);
    expect(verifierReportSchema.safeParse({ ...report, positions: [{ p: 0.5 }] }).success).toBe(false);
    expect(verifierReportSchema.safeParse({ ...report, stopStringSeen: 'no' }).success).toBe(false);
    expect(verifierReportSchema.safeParse({ ...report, positions: 'many' }).success).toBe(false);
  });
});
