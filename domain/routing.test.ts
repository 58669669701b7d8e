/**
 * The router's pure scoring: hard filters, the direction of each score term, determinism,
 * load spreading, admission and limits. No stack needed.
 */
import { describe, expect, it } from 'vitest';
import {
  type Candidate,
  type RouteRequest,
  defaultStalenessMs,
  estimateChatPromptTokens,
  estimatePromptTokens,
  maxRejectedReported,
  messageOverheadTokens,
  exploreShare,
  rankCandidates,
  spreadJitter,
} from './routing.ts';

const hash = 'a'.repeat(64);
const otherHash = 'b'.repeat(64);

function node(nodeId: string, overrides: Partial<Candidate> = {}): Candidate {
  return {
    nodeId,
    operator: `0x${nodeId.replace(/[^0-9a-f]/g, '').padStart(40, '1').slice(-40)}`,
    state: 'active',
    status: 'serving',
    modelHash: hash,
    contextSize: 8192,
    maxParallel: 4,
    inFlight: 0,
    freeSlots: 4,
    recentTokensPerSecond: 500,
    latencyMs: 200,
    reputation: 0.8,
    heartbeatAgeMs: 1000,
    ...overrides,
  };
}

function request(overrides: Partial<RouteRequest> = {}): RouteRequest {
  return { requestId: 'req-1', modelId: 'qwen2.5-0.5b-instruct', promptTokens: 500, maxTokens: 1000, ...overrides };
}

const requestIds = (n: number) => Array.from({ length: n }, (_, i) => `req-${i.toString(36)}-${i * 7919}`);

/** For each of many request ids, whether `winner` ranks first among the two candidates. */
function alwaysFirst(winner: Candidate, loser: Candidate): boolean {
  return requestIds(200).every((requestId) => rankCandidates([loser, winner], request({ requestId })).ranked[0]?.nodeId === winner.nodeId);
}

describe('rankCandidates: hard filters', () => {
  const cases: [string, Candidate, Partial<RouteRequest>, RegExp][] = [
    ['suspended', node('n-suspended', { state: 'suspended' }), {}, /suspended/],
    ['offline', node('n-offline', { state: 'offline' }), {}, /offline/],
    ['retired', node('n-retired', { state: 'retired' }), {}, /node is retired/],
    // A state this code does not know is not a licence to route (a broken or newer projection).
    ['unknown state', node('n-unknown', { state: 'banished' as never }), {}, /node is banished/],
    ['draining', node('n-draining', { status: 'draining' }), {}, /draining/],
    ['no free slots', node('n-full', { freeSlots: 0, inFlight: 4 }), {}, /no free slots \(4\/4 in flight\)/],
    ['negative free slots', node('n-negative', { freeSlots: -1 }), {}, /no free slots/],
    ['context too small', node('n-small', { contextSize: 1024 }), {}, /context 1024 tokens < 500 prompt \+ 1000 max tokens/],
    ['wrong model file', node('n-hash', { modelHash: otherHash }), { expectedModelHash: hash }, /model file bbbbbbbbbbbb… is not the pinned aaaaaaaaaaaa…/],
    ['excluded node', node('n-excluded'), { excludeNodes: ['n-excluded'] }, /node excluded/],
    ['excluded operator', node('n-op', { operator: `0x${'AB'.repeat(20)}` }), { excludeOperators: [`0x${'ab'.repeat(20)}`] }, /operator 0xABAB.* excluded/],
    ['stale heartbeat', node('n-stale', { heartbeatAgeMs: defaultStalenessMs + 1 }), {}, /heartbeat 15001 ms old \(limit 15000 ms\)/],
    ['NaN heartbeat age', node('n-nan', { heartbeatAgeMs: Number.NaN }), {}, /heartbeat/],
  ];

  it.each(cases)('rejects %s with its reason', (_name, bad, overrides, why) => {
    const good = node('n-good');
    const decision = rankCandidates([bad, good], request(overrides));
    expect(decision.ranked.map((r) => r.nodeId)).toEqual(['n-good']);
    expect(decision.rejected).toHaveLength(1);
    expect(decision.rejected[0]!.nodeId).toBe(bad.nodeId);
    expect(decision.rejected[0]!.why).toMatch(why);
  });

  it('uses the given staleness limit', () => {
    const candidate = node('n-1', { heartbeatAgeMs: 5000 });
    expect(rankCandidates([candidate], request()).ranked).toHaveLength(1);
    const decision = rankCandidates([candidate], request(), { stalenessMs: 4000 });
    expect(decision.ranked).toEqual([]);
    expect(decision.rejected[0]!.why).toMatch(/limit 4000 ms/);
  });

  it('accepts a context exactly as large as prompt + max tokens', () => {
    expect(rankCandidates([node('n-exact', { contextSize: 1500 })], request()).ranked).toHaveLength(1);
  });

  it('compares model hashes ignoring 0x and case (registration bytes32 vs heartbeat hex)', () => {
    const decision = rankCandidates([node('n-1')], request({ expectedModelHash: `0x${hash.toUpperCase()}` }));
    expect(decision.ranked).toHaveLength(1);
  });

  it('keeps probation and degraded nodes (ranked behind healthy ones)', () => {
    const decision = rankCandidates([node('n-probation', { state: 'probation' }), node('n-degraded', { state: 'degraded' }), node('n-active')], request());
    expect(decision.ranked.map((r) => r.nodeId)).toEqual(['n-active', 'n-probation', 'n-degraded']);
    expect(decision.ranked[1]!.reason).toMatch(/probation/);
    expect(decision.rejected).toEqual([]);
  });

  it(`caps the reported rejections at ${maxRejectedReported}`, () => {
    const full = Array.from({ length: 100 }, (_, i) => node(`n-${i}`, { freeSlots: 0 }));
    const decision = rankCandidates(full, request());
    expect(decision.ranked).toEqual([]);
    expect(decision.rejected).toHaveLength(maxRejectedReported);
    expect(decision.rejected[0]!.nodeId).toBe('n-0');
  });
});

describe('rankCandidates: score terms', () => {
  it('prefers more free slots', () => {
    expect(alwaysFirst(node('n-idle', { freeSlots: 4 }), node('n-busy', { freeSlots: 1, inFlight: 3 }))).toBe(true);
  });

  it('prefers higher throughput', () => {
    expect(alwaysFirst(node('n-fast', { recentTokensPerSecond: 1000 }), node('n-slow', { recentTokensPerSecond: 10 }))).toBe(true);
  });

  it('prefers higher reputation', () => {
    expect(alwaysFirst(node('n-trusted', { reputation: 0.9 }), node('n-doubtful', { reputation: 0.5 }))).toBe(true);
  });

  it('prefers lower latency', () => {
    expect(alwaysFirst(node('n-quick', { latencyMs: 100 }), node('n-laggy', { latencyMs: 3000 }))).toBe(true);
  });

  it('treats unknown throughput and latency as neutral: between a good and a bad known value', () => {
    const ranked = (candidates: Candidate[]) =>
      requestIds(50).every((requestId) => {
        const ids = rankCandidates(candidates, request({ requestId })).ranked.map((r) => r.nodeId);
        return ids.join() === 'n-good,n-unknown,n-bad';
      });
    expect(
      ranked([
        node('n-bad', { recentTokensPerSecond: 5 }),
        node('n-unknown', { recentTokensPerSecond: 0 }),
        node('n-good', { recentTokensPerSecond: 2000 }),
      ]),
    ).toBe(true);
    expect(ranked([node('n-bad', { latencyMs: 5000 }), node('n-unknown', { latencyMs: undefined }), node('n-good', { latencyMs: 50 })])).toBe(true);
  });

  it('lets a probation node outrank a busier, slower active node (so it can build a record)', () => {
    const newcomer = node('n-new', { state: 'probation', reputation: 0.5, recentTokensPerSecond: 0, latencyMs: undefined });
    const busy = node('n-busy', { reputation: 0.6, freeSlots: 1, inFlight: 3, recentTokensPerSecond: 40, latencyMs: 1500 });
    expect(alwaysFirst(newcomer, busy)).toBe(true);
  });

  it('explains each ranked candidate', () => {
    const decision = rankCandidates([node('n-1', { freeSlots: 3, inFlight: 1, recentTokensPerSecond: 812.4, reputation: 0.92, latencyMs: 120 })], request());
    expect(decision.ranked[0]!.reason).toBe('3/4 slots free, 812 tok/s, reputation 0.92, 120 ms ttft');
    const unknown = rankCandidates([node('n-2', { recentTokensPerSecond: 0, latencyMs: undefined })], request());
    expect(unknown.ranked[0]!.reason).toBe('4/4 slots free, tok/s unknown, reputation 0.80, ttft unknown');
  });
});

describe('rankCandidates: determinism and load spreading', () => {
  const many = Array.from({ length: 50 }, (_, i) =>
    node(`node-${i}`, { freeSlots: 1 + (i % 4), reputation: 0.5 + (i % 5) / 10, recentTokensPerSecond: (i * 37) % 900, latencyMs: i % 3 ? 100 + i * 10 : undefined }),
  );

  it('gives the same decision for the same input', () => {
    const a = rankCandidates(many, request({ requestId: 'req-same' }), { limit: 10 });
    const b = rankCandidates(many.map((c) => ({ ...c })), request({ requestId: 'req-same' }), { limit: 10 });
    expect(b).toEqual(a);
    expect(a.ranked).toHaveLength(10);
  });

  it('does not depend on the input order', () => {
    const forward = rankCandidates(many, request(), { limit: 10 });
    const backward = rankCandidates([...many].reverse(), request(), { limit: 10 });
    expect(backward.ranked).toEqual(forward.ranked);
  });

  it('ranks best first, the same as a full sort would', () => {
    const top = rankCandidates(many, request(), { limit: 10 }).ranked;
    const all = rankCandidates(many, request(), { limit: Infinity }).ranked;
    expect(all).toHaveLength(many.length);
    expect(top).toEqual(all.slice(0, 10));
    for (let i = 1; i < all.length; i++) expect(all[i - 1]!.score).toBeGreaterThanOrEqual(all[i]!.score);
  });

  it('spreads equal nodes: over 1,000 requests each of 4 identical nodes is first at least 15% of the time', () => {
    const nodes = ['node-1', 'node-2', 'node-3', 'node-4'].map((id) => node(id));
    const firsts = new Map<string, number>();
    for (const requestId of Array.from({ length: 1000 }, (_, i) => `req-${i}`)) {
      const first = rankCandidates(nodes, request({ requestId })).ranked[0]!.nodeId;
      firsts.set(first, (firsts.get(first) ?? 0) + 1);
    }
    expect([...firsts.keys()].sort()).toEqual(['node-1', 'node-2', 'node-3', 'node-4']);
    for (const count of firsts.values()) expect(count).toBeGreaterThanOrEqual(150);
  });

  it('jitter is in [0, 1) and fixed per (request, node)', () => {
    const values = requestIds(1000).map((id) => spreadJitter(id, 'node-1'));
    for (const v of values) expect(v >= 0 && v < 1).toBe(true);
    expect(spreadJitter('req-x', 'node-1')).toBe(spreadJitter('req-x', 'node-1'));
    expect(spreadJitter('req-x', 'node-1')).not.toBe(spreadJitter('req-x', 'node-2'));
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    expect(mean).toBeGreaterThan(0.45);
    expect(mean).toBeLessThan(0.55);
  });
});

describe('rankCandidates: admission, limits, edge cases', () => {
  it('returns an empty ranking with reasons when the request fits no node', () => {
    const nodes = [node('n-4k', { contextSize: 4096 }), node('n-8k', { contextSize: 8192 })];
    const decision = rankCandidates(nodes, request({ promptTokens: 6000, maxTokens: 4000 }));
    expect(decision.ranked).toEqual([]);
    expect(decision.rejected).toEqual([
      { nodeId: 'n-4k', why: 'context 4096 tokens < 6000 prompt + 4000 max tokens' },
      { nodeId: 'n-8k', why: 'context 8192 tokens < 6000 prompt + 4000 max tokens' },
    ]);
  });

  it('respects the limit (default 3)', () => {
    const nodes = Array.from({ length: 10 }, (_, i) => node(`n-${i}`));
    expect(rankCandidates(nodes, request()).ranked).toHaveLength(3);
    expect(rankCandidates(nodes, request(), { limit: 1 }).ranked).toHaveLength(1);
    expect(rankCandidates(nodes, request(), { limit: 5 }).ranked).toHaveLength(5);
    expect(rankCandidates(nodes, request(), { limit: 100 }).ranked).toHaveLength(10);
    expect(rankCandidates(nodes, request(), { limit: 0 }).ranked).toEqual([]);
    expect(() => rankCandidates(nodes, request(), { limit: -1 })).toThrow(RangeError);
    expect(() => rankCandidates(nodes, request(), { limit: 1.5 })).toThrow(RangeError);
  });

  it('handles empty input', () => {
    expect(rankCandidates([], request())).toEqual({ ranked: [], rejected: [], busy: 0 });
  });
});

describe('rankCandidates: fair routing (issue 12)', () => {
  it('never ranks a node whose slots the router already filled since its heartbeat, and counts it busy', () => {
    const decision = rankCandidates([node('n-full', { freeSlots: 2, assignedSinceHeartbeat: 2 }), node('n-room', { reputation: 0.1 })], request());
    expect(decision.ranked.map((r) => r.nodeId)).toEqual(['n-room']);
    expect(decision.rejected).toEqual([{ nodeId: 'n-full', why: 'no free slots (4/4 in flight)' }]);
    expect(decision.busy).toBe(1);
    expect(rankCandidates([node('a', { freeSlots: 0 }), node('b', { freeSlots: 1, assignedSinceHeartbeat: 1 })], request())).toMatchObject({ ranked: [], busy: 2 });
  });

  it('spreads sequential traffic between near-equal nodes by what each recently took', () => {
    // A slightly better node: without the balance term it would win every request.
    const better = node('n-better', { latencyMs: 150, recentTokensPerSecond: 600 });
    const other = node('n-other');
    const recent = { 'n-better': 0, 'n-other': 0 };
    for (const requestId of requestIds(40)) {
      for (const k of Object.keys(recent) as (keyof typeof recent)[]) recent[k] *= 0.9;
      const chosen = rankCandidates([better, other].map((c) => ({ ...c, recentRequests: recent[c.nodeId as keyof typeof recent] })), request({ requestId })).ranked[0]!.nodeId;
      recent[chosen as keyof typeof recent] += 1;
    }
    const counts = { 'n-better': 0, 'n-other': 0 };
    const again = { 'n-better': 0, 'n-other': 0 };
    for (const requestId of requestIds(40)) {
      for (const k of Object.keys(again) as (keyof typeof again)[]) again[k] *= 0.9;
      const chosen = rankCandidates([better, other].map((c) => ({ ...c, recentRequests: again[c.nodeId as keyof typeof again] })), request({ requestId })).ranked[0]!.nodeId as keyof typeof counts;
      again[chosen] += 1;
      counts[chosen]++;
    }
    expect(counts['n-better']).toBeGreaterThanOrEqual(10);
    expect(counts['n-other']).toBeGreaterThanOrEqual(10);
    expect(counts['n-better']).toBeGreaterThanOrEqual(counts['n-other']);
  });

  it('puts a node with no record first on a bounded share of requests', () => {
    const established = node('n-old', { requestsServed: 500, reputation: 0.95 });
    const fresh = node('n-new', { requestsServed: 0, state: 'probation', reputation: 0.5, latencyMs: undefined });
    const ids = requestIds(1000);
    const firstNew = ids.filter((requestId) => rankCandidates([established, fresh], request({ requestId })).ranked[0]!.nodeId === 'n-new').length;
    expect(firstNew / ids.length).toBeGreaterThan(exploreShare * 0.7);
    expect(firstNew / ids.length).toBeLessThan(exploreShare * 1.3);
    expect(rankCandidates([established, fresh], request()).ranked.find((r) => r.nodeId === 'n-new')!.reason).toMatch(/no record yet/);
    // Full, it is not explored.
    const full = { ...fresh, freeSlots: 0 };
    expect(ids.every((requestId) => rankCandidates([established, full], request({ requestId })).ranked[0]!.nodeId === 'n-old')).toBe(true);
  });
});

describe('estimatePromptTokens', () => {
  it('over-estimates English text (real tokenizers average ~4 characters per token)', () => {
    const text = 'The quick brown fox jumps over the lazy dog. '.repeat(20);
    expect(estimatePromptTokens(text)).toBeGreaterThanOrEqual(Math.ceil(text.length / 3));
    expect(estimatePromptTokens(text)).toBe(Math.ceil(text.length / 3) + messageOverheadTokens);
  });

  it('counts digits and non-Latin scripts heavier', () => {
    expect(estimatePromptTokens('')).toBe(messageOverheadTokens);
    expect(estimatePromptTokens('1234567890')).toBe(10 + messageOverheadTokens);
    expect(estimatePromptTokens('привет')).toBe(6 + messageOverheadTokens);
    expect(estimatePromptTokens('你好世界')).toBe(8 + messageOverheadTokens);
    expect(estimatePromptTokens('😀')).toBe(2 + messageOverheadTokens);
  });

  it('sums a chat, message by message', () => {
    const messages = [
      { role: 'system' as const, content: 'You are helpful.' },
      { role: 'user' as const, content: 'Hi!' },
    ];
    expect(estimateChatPromptTokens(messages)).toBe(estimatePromptTokens('You are helpful.') + estimatePromptTokens('Hi!'));
  });
});
