/**
 * Checking a claimed answer by teacher forcing. A verifier node runs one forward pass over
 * prompt + claimed answer and, for each claimed token, reduces the model's distribution to a
 * few numbers (`PositionStat`); `judge` decides from those numbers alone. Pure: the workflow
 * judges, nodes only measure.
 *
 * Greedy answers (temperature 0) must be the verifier's top choice at nearly every position,
 * with a tolerance for near-ties that numeric differences between GPUs can flip.
 * Sampled answers must be plausible under the claimed sampling settings: no token outside the
 * sampler's kept set (top-k, top-p), and a total log-likelihood not far below what honest
 * sampling gives (a one-sided z-test; see `samplingZThreshold` for the false-alarm rate).
 */
import type { FinishReason, Sampling } from './inference.ts';

/**
 * The sampler settings an honest node actually uses. node-llama-cpp samples with top-k 40 and
 * top-p 0.95 when none are given; the network makes those defaults explicit so generator and
 * verifier model exactly the same distribution.
 */
export function resolveSampling(s: Sampling): Required<Pick<Sampling, 'temperature' | 'maxTokens'>> & { topK: number; topP: number } {
  return { temperature: s.temperature, maxTokens: s.maxTokens, topK: s.topK ?? 40, topP: s.topP ?? 0.95 };
}

export interface PositionStat {
  /** Probability of the claimed token under the raw model distribution. */
  p: number;
  /** Tokens strictly more probable than the claimed one. */
  rank: number;
  /** Probability of the most probable token. */
  pTop: number;
  /** log q(claimed) under the claimed sampling settings; null when the sampler could not pick it. */
  logQ: number | null;
  /** Entropy and variance of log q under the sampling distribution (for the z-test). */
  entropy: number;
  variance: number;
}

export interface VerifierReport {
  verifierNodeId: string;
  positions: PositionStat[];
  /** Probability that the model ends its answer after the claimed tokens (end-of-generation tokens). */
  endProbability: number;
  endRank: number;
  /** The claimed text reached one of the stop strings, the request's or its grammar's (a legitimate early stop). */
  stopStringSeen: boolean;
  /**
   * Claimed tokens the request's grammar (its response_format) forbids where they stand. Not
   * noise: a grammar allows a token or not on every machine alike.
   */
  grammarViolations: number;
  /** Wall time of the check on the verifier, ms. */
  checkMs: number;
}

/**
 * A claimed token with at least this share of the top token's probability counts as a tie.
 * Teacher forcing evaluates in one batch what generation evaluated token by token, and with
 * quantised weights llama.cpp takes other kernels for each: measured on SmolLM2-135M Q4_1 on
 * CPU, 2.5% of honest greedy tokens were not the verifier's top choice, at p/pTop between 0.68
 * and 0.97. GPUs of different makes differ more than one CPU from itself, hence 0.5.
 * Lies sit far below: random or another model's tokens have p/pTop around 0.01.
 */
export const tieRatio = 0.5;
/** Share of positions a greedy answer may miss the top choice by more than a tie. */
export const greedyMismatchAllowance = 0.03;
/**
 * z below which a sampled answer is rejected. Under honest sampling the statistic is a sum of
 * independent per-position terms, close to standard normal for answers of more than a few
 * tokens: P(z < -4) ≈ 3.2e-5, i.e. about one false alarm in 30,000 checks.
 */
export const samplingZThreshold = -4;
/**
 * Answers this long at least, for the z-test: its normal approximation needs many positions.
 * A short answer under a grammar (`{}` as JSON, two tokens) drawn honestly from the tail of
 * two peaked distributions measured z = -5.1 on SmolLM2; below this length only the sampler's
 * kept set and the answer's end are checked.
 */
export const zTestMinPositions = 16;
/** Share of positions (plus one) where a token outside the kept set is tolerated (a boundary flipped by noise). */
export const impossibleAllowance = 0.02;
/** A greedy answer may end early only where ending has at least this probability. */
export const greedyEndMinProbability = 0.05;

/**
 * Reduces one position's distribution, sorted by probability (descending), to a PositionStat.
 * `claimedIndex` is the claimed token's index in the sorted list.
 */
export function positionStat(sortedProbs: readonly number[], claimedIndex: number, sampling: Sampling): PositionStat {
  const s = resolveSampling(sampling);
  const p = sortedProbs[claimedIndex] ?? 0;
  let rank = 0;
  while (rank < sortedProbs.length && sortedProbs[rank]! > p) rank++;
  const pTop = sortedProbs[0] ?? 0;
  if (s.temperature === 0) return { p, rank, pTop, logQ: null, entropy: 0, variance: 0 };

  // llama.cpp's chain: top-k, then top-p over the renormalised survivors, then temperature.
  const k = s.topK > 0 ? Math.min(s.topK, sortedProbs.length) : sortedProbs.length;
  let mass = 0;
  for (let i = 0; i < k; i++) mass += sortedProbs[i]!;
  let kept = 0;
  let cumulative = 0;
  while (kept < k) {
    cumulative += sortedProbs[kept]! / mass;
    kept++;
    if (cumulative >= s.topP) break;
  }
  // A claimed token just past the boundary, with a probability within the tie tolerance of the
  // last kept one, counts as kept: GPUs may disagree about a boundary that close.
  const boundary = sortedProbs[kept - 1] ?? 0;
  const inside = claimedIndex < kept || p >= boundary * tieRatio;
  const n = Math.max(kept, inside ? claimedIndex + 1 : 0);
  let z = 0;
  const logits = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    logits[i] = Math.log(Math.max(sortedProbs[i]!, 1e-300)) / s.temperature;
  }
  const max = logits[0]!;
  for (let i = 0; i < n; i++) z += Math.exp(logits[i]! - max);
  const logZ = max + Math.log(z);
  let entropy = 0;
  let second = 0;
  for (let i = 0; i < n; i++) {
    const lq = logits[i]! - logZ;
    const q = Math.exp(lq);
    entropy -= q * lq;
    second += q * lq * lq;
  }
  return { p, rank, pTop, logQ: inside ? logits[claimedIndex]! - logZ : null, entropy, variance: Math.max(0, second - entropy * entropy) };
}

export type Verdict =
  | { passed: true; reason: string; z?: number }
  | { passed: false; fault: 'mismatch' | 'implausible' | 'truncated' | 'empty' | 'constraint'; reason: string; z?: number };

export interface Claim {
  sampling: Sampling;
  finishReason: FinishReason;
  tokenCount: number;
}

export function judge(claim: Claim, report: VerifierReport): Verdict {
  const n = report.positions.length;
  if (n !== claim.tokenCount) return { passed: false, fault: 'mismatch', reason: `verifier scored ${n} positions for ${claim.tokenCount} claimed tokens` };
  const s = resolveSampling(claim.sampling);
  // 'length' means the max_tokens budget ran out: a shorter answer claiming it was cut.
  if (claim.finishReason === 'length' && n < s.maxTokens) {
    return { passed: false, fault: 'truncated', reason: `the answer claims to have reached max_tokens (${s.maxTokens}) after ${n} tokens` };
  }
  if (n > s.maxTokens) return { passed: false, fault: 'mismatch', reason: `${n} tokens claimed for max_tokens ${s.maxTokens}` };
  if (report.grammarViolations > 0) {
    return { passed: false, fault: 'constraint', reason: `${report.grammarViolations} of ${n} tokens break the grammar of the response format the answer claims to follow` };
  }
  const endedEarly = claim.finishReason === 'stop' && !report.stopStringSeen;

  if (s.temperature === 0) {
    const misses = report.positions.filter((x) => x.rank > 0 && x.p < x.pTop * tieRatio).length;
    if (misses > Math.floor(n * greedyMismatchAllowance)) {
      return { passed: false, fault: 'mismatch', reason: `${misses} of ${n} greedy tokens are not the model's top choice` };
    }
    if (endedEarly && report.endRank > 0 && report.endProbability < greedyEndMinProbability) {
      return { passed: false, fault: 'truncated', reason: `the answer claims to end after ${n} tokens, but ending is only choice ${report.endRank + 1} there` };
    }
    return { passed: true, reason: `${n - misses} of ${n} greedy tokens are the top choice` };
  }

  const impossible = report.positions.filter((x) => x.logQ === null).length;
  if (impossible > Math.floor(n * impossibleAllowance) + 1) {
    return { passed: false, fault: 'implausible', reason: `${impossible} of ${n} tokens could not be sampled with top_k ${s.topK}, top_p ${s.topP}` };
  }
  let sumLog = 0;
  let sumEntropy = 0;
  let sumVariance = 0;
  for (const x of report.positions) {
    if (x.logQ === null) continue;
    sumLog += x.logQ;
    sumEntropy += x.entropy;
    sumVariance += x.variance;
  }
  const z = sumVariance > 1e-9 ? (sumLog + sumEntropy) / Math.sqrt(sumVariance) : 0;
  if (n >= zTestMinPositions && z < samplingZThreshold) {
    return { passed: false, fault: 'implausible', reason: `the answer is far less likely than honest sampling gives (z = ${z.toFixed(1)})`, z };
  }
  if (endedEarly && report.endProbability < 1e-4) {
    return { passed: false, fault: 'truncated', reason: `the answer claims to end after ${n} tokens, where ending has probability ${report.endProbability.toExponential(1)}`, z };
  }
  return { passed: true, reason: `plausible under the sampling settings (z = ${z.toFixed(1)})`, z };
}
