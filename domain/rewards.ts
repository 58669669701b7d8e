/**
 * Reward accrual for one served request, in integer base units of GBT (18 decimals).
 * No floating point touches an amount: weights and factors are integers in basis points.
 */

/** GBT base units per token at reward weight 10_000 (1.0x, SmolLM2-135M) and full reputation: 0.0001 GBT. */
export const baseUnitsPerToken = 10n ** 14n;
export const bps = 10_000n;

/**
 * A node's reputation (0..1) as a factor in basis points: from 50% for an unknown or poor
 * node to 100% for a perfect one, so reputation moves pay without zeroing new nodes.
 */
export function reputationFactorBps(reputation: number): bigint {
  const clamped = Math.min(1, Math.max(0, Number.isFinite(reputation) ? reputation : 0));
  return 5_000n + BigInt(Math.round(clamped * 5_000));
}

/** tokens served × the model's reward weight × the reputation factor. */
export function accrualAmount(completionTokens: number, rewardWeightBps: number, reputation: number): bigint {
  if (!Number.isSafeInteger(completionTokens) || completionTokens < 0) throw new RangeError(`bad token count ${completionTokens}`);
  if (!Number.isSafeInteger(rewardWeightBps) || rewardWeightBps < 0) throw new RangeError(`bad reward weight ${rewardWeightBps}`);
  return (BigInt(completionTokens) * BigInt(rewardWeightBps) * baseUnitsPerToken * reputationFactorBps(reputation)) / (bps * bps);
}
