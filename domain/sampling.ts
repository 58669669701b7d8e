/**
 * How often a node's answers are spot-checked. High on probation, falling with a clean record
 * to a floor, back to every request after any failed check. The decision is drawn inside the
 * request workflow after the answer is delivered, so a node cannot tell a checked request from
 * another while it serves it, and the verifier is chosen by the router, not the node.
 *
 * Detection: a node cheating on a share f of its requests, each lie caught by a check with
 * probability d (≈ 1 for random tokens, truncation or another model; see the benchmark), and
 * checked at rate r, is caught within n requests with probability 1 - (1 - f·r·d)^n.
 * At the floor r = 0.05 with f = 0.1, d = 1: 40% within 100 requests, 92% within 500; on
 * probation (r = 0.5), f = 0.1: 99.5% within 100. One caught lie raises r to 1, and
 * SUSPEND_AFTER_CONSECUTIVE_VERIFICATION_FAILURES (2) in a row suspends the node.
 */
import type { NodeState } from './reputation.ts';

export const samplingPolicy = {
  probation: 0.5,
  /** Active nodes start here and decay by `decay` per clean check down to `floor`. */
  active: 0.25,
  decay: 0.95,
  floor: 0.05,
  degraded: 0.5,
  /** After any failed check, every answer is checked until this many clean requests have passed. */
  afterFailure: 1,
  cleanChecksToRelax: 10,
} as const;

export interface SamplingRecord {
  verificationPasses: number;
  verificationFailures: number;
  consecutiveVerificationFailures: number;
  /** Clean requests since the last failed check; undefined = never failed. */
  passesSinceFailure?: number | undefined;
}

/** The share of a node's answers to check, in [floor, 1]. */
export function spotCheckRate(state: NodeState | undefined, record: SamplingRecord | undefined): number {
  const p = samplingPolicy;
  if (!record || state === undefined || state === 'probation') return p.probation;
  if (state === 'suspended' || state === 'offline' || state === 'retired') return 1;
  if (record.consecutiveVerificationFailures > 0) return p.afterFailure;
  if (record.verificationFailures > 0 && (record.passesSinceFailure ?? 0) < p.cleanChecksToRelax) return p.afterFailure;
  if (state === 'degraded') return p.degraded;
  return Math.max(p.floor, p.active * p.decay ** record.verificationPasses);
}
