/**
 * The router's scoring cost: time to rank 100, 1,000 and 10,000 random candidates with
 * rankCandidates (filters, scores, top 3), median and p99 over many iterations after a
 * warm-up. Pure CPU: no stack needed. The candidates come from a seeded PRNG, so every run
 * measures the same inputs; each iteration uses a new request id, so the jitter (and thus
 * the top-K window's work) varies as it does in production.
 *
 *   npx tsx bench/router.ts [--iterations 200] [--warmup 50] [--seed 1]
 */
import { performance } from 'node:perf_hooks';
import type { NodeState } from '../domain/reputation.ts';
import { type Candidate, rankCandidates } from '../domain/routing.ts';
import { intFlag, median, percentile } from './harness.ts';

const iterations = intFlag('iterations', 200);
const warmup = intFlag('warmup', 50, 0);
const seed = intFlag('seed', 1, 0);
const sizes = [100, 1_000, 10_000];

/** mulberry32: a small, fast, seeded PRNG (the benchmark must be repeatable). */
function mulberry32(state: number): () => number {
  let s = state >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const modelHash = 'a'.repeat(64);

/**
 * A plausible network: mostly active serving nodes with some probation, degraded, suspended,
 * draining, full, stale and small-context ones, so every filter and score path runs.
 */
function randomCandidates(count: number, random: () => number): Candidate[] {
  const states: NodeState[] = ['active', 'active', 'active', 'active', 'active', 'active', 'probation', 'probation', 'degraded', 'suspended'];
  const hex = () => Math.floor(random() * 0x100000000).toString(16).padStart(8, '0');
  return Array.from({ length: count }, (_, i): Candidate => {
    const maxParallel = 1 + Math.floor(random() * 8);
    const inFlight = Math.floor(random() * (maxParallel + 1));
    return {
      nodeId: `node-${hex()}${i.toString(36)}`,
      operator: `0x${hex()}${hex()}${hex()}${hex()}${hex()}`,
      state: states[Math.floor(random() * states.length)]!,
      status: random() < 0.05 ? 'draining' : 'serving',
      modelHash,
      contextSize: random() < 0.1 ? 2048 : 8192,
      maxParallel,
      inFlight,
      freeSlots: maxParallel - inFlight,
      recentTokensPerSecond: random() < 0.1 ? 0 : random() * 2000,
      latencyMs: random() < 0.2 ? undefined : 30 + random() * 2000,
      reputation: random(),
      heartbeatAgeMs: random() * 16_000,
    };
  });
}

const random = mulberry32(seed);
console.log(`rankCandidates, top 3, ${warmup} warm-up + ${iterations} timed iterations per size (seed ${seed}, node ${process.version})`);
for (const size of sizes) {
  const candidates = randomCandidates(size, random);
  let sink = 0;
  for (let i = 0; i < warmup; i++) sink += rankCandidates(candidates, { requestId: `warm-${i}`, modelId: 'm', promptTokens: 1000, maxTokens: 2000 }).ranked.length;
  const times: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const request = { requestId: `req-${size}-${i}`, modelId: 'm', promptTokens: 1000, maxTokens: 2000, expectedModelHash: modelHash };
    const start = performance.now();
    const decision = rankCandidates(candidates, request);
    times.push(performance.now() - start);
    sink += decision.ranked.length; // keeps the call from being optimised away
  }
  if (sink === 0) throw new Error('nothing was ranked');
  console.log(`${size} candidates: median ${median(times).toFixed(3)} ms, p99 ${percentile(times, 99).toFixed(3)} ms`);
}
