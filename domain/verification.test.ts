import { describe, expect, it } from 'vitest';
import { judge, type VerifierReport } from './verification.ts';

/** A report where every claimed token was the verifier's top choice. */
function topChoices(n: number): VerifierReport {
  return {
    verifierNodeId: 'v',
    positions: Array.from({ length: n }, () => ({ p: 0.9, rank: 0, pTop: 0.9, logQ: 0, entropy: 0, variance: 0 })),
    endProbability: 0.01,
    endRank: 5,
    stopStringSeen: false,
    grammarViolations: 0,
    checkMs: 1,
  };
}

describe('judge', () => {
  const greedy = { temperature: 0, maxTokens: 8 };

  it('passes a greedy answer that ran to max_tokens', () => {
    expect(judge({ sampling: greedy, finishReason: 'length', tokenCount: 8 }, topChoices(8))).toMatchObject({ passed: true });
  });

  it('fails an answer cut short that claims to have reached max_tokens', () => {
    for (const n of [0, 3, 7]) {
      expect(judge({ sampling: greedy, finishReason: 'length', tokenCount: n }, topChoices(n))).toMatchObject({ passed: false, fault: 'truncated' });
    }
  });

  it('fails an answer longer than max_tokens', () => {
    expect(judge({ sampling: greedy, finishReason: 'stop', tokenCount: 9 }, topChoices(9))).toMatchObject({ passed: false, fault: 'mismatch' });
  });

  it('fails an answer with a token its claimed grammar forbids, even one: a grammar is not noise', () => {
    const sampling = { ...greedy, grammar: { type: 'json' as const } };
    expect(judge({ sampling, finishReason: 'length', tokenCount: 8 }, { ...topChoices(8), grammarViolations: 1 })).toMatchObject({ passed: false, fault: 'constraint' });
    expect(judge({ sampling, finishReason: 'length', tokenCount: 8 }, topChoices(8))).toMatchObject({ passed: true });
  });

  it('leaves the z-test to answers long enough for it: a short honest answer from the tail passes', () => {
    const sampling = { temperature: 0.8, maxTokens: 64 };
    const unlikely = (n: number): VerifierReport => ({ ...topChoices(n), positions: Array.from({ length: n }, () => ({ p: 0.01, rank: 3, pTop: 0.9, logQ: -3.6, entropy: 0.3, variance: 0.6 })) });
    expect(judge({ sampling, finishReason: 'stop', tokenCount: 2 }, { ...unlikely(2), endProbability: 0.5 })).toMatchObject({ passed: true });
    expect(judge({ sampling, finishReason: 'stop', tokenCount: 20 }, { ...unlikely(20), endProbability: 0.5 })).toMatchObject({ passed: false, fault: 'implausible' });
  });

  it('fails a report that scored another number of positions', () => {
    expect(judge({ sampling: greedy, finishReason: 'length', tokenCount: 8 }, topChoices(7))).toMatchObject({ passed: false, fault: 'mismatch' });
  });
});
