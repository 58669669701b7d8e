import { describe, expect, it } from 'vitest';
import {
  availableEmission,
  cumulativeEmission,
  EMISSION_EPOCHS,
  EmissionInputError,
  epochAt,
  epochEmission,
  epochPayout,
  epochWindow,
  GBT,
  lastCompleteEpoch,
  NODE_REWARDS_POOL,
} from './emission.ts';

describe('emission schedule', () => {
  it('states its numbers: 4,564,277.18 GBT in week 0, 1% less each week, 208 weeks', () => {
    expect(epochEmission(0) / (GBT / 100n)).toBe(456_427_717n);
    expect(epochEmission(207) / (GBT / 100n)).toBe(56_997_694n);
    for (let k = 1; k < EMISSION_EPOCHS - 1; k++) {
      // Within a base unit of 99% of the week before (each week is floored on its own).
      const expected = (epochEmission(k - 1) * 99n) / 100n;
      expect(epochEmission(k) - expected).toBeGreaterThanOrEqual(-1n);
      expect(epochEmission(k) - expected).toBeLessThanOrEqual(1n);
    }
    expect(epochEmission(208)).toBe(0n);
    expect(epochEmission(10_000)).toBe(0n);
  });

  it('emits exactly the 400M pool over the 208 weeks, never more', () => {
    let sum = 0n;
    for (let k = 0; k < 300; k++) {
      sum += epochEmission(k);
      expect(cumulativeEmission(k)).toBe(sum);
      expect(sum).toBeLessThanOrEqual(NODE_REWARDS_POOL);
    }
    expect(sum).toBe(NODE_REWARDS_POOL);
    expect(cumulativeEmission(207)).toBe(NODE_REWARDS_POOL);
    // Year by year: 46.4%, 74.0%, 90.3%, 100%.
    expect((cumulativeEmission(51) * 1000n) / NODE_REWARDS_POOL).toBe(464n);
    expect((cumulativeEmission(103) * 1000n) / NODE_REWARDS_POOL).toBe(739n);
  });

  it('rolls unspent emission forward and never goes negative', () => {
    expect(availableEmission(0, 0n)).toBe(epochEmission(0));
    expect(availableEmission(2, epochEmission(0))).toBe(epochEmission(1) + epochEmission(2));
    expect(availableEmission(1, NODE_REWARDS_POOL)).toBe(0n);
    expect(() => availableEmission(1, -1n)).toThrow(EmissionInputError);
  });

  it('numbers epochs in weeks since genesis', () => {
    const schedule = { genesis: 1_000_000, epochSeconds: 604_800 };
    expect(epochAt(999_999_000, schedule)).toBe(-1);
    expect(epochAt(1_000_000_000, schedule)).toBe(0);
    expect(epochAt((1_000_000 + 604_800) * 1000 - 1, schedule)).toBe(0);
    expect(epochAt((1_000_000 + 604_800) * 1000, schedule)).toBe(1);
    expect(epochWindow(3, schedule)).toEqual({ startMs: (1_000_000 + 3 * 604_800) * 1000, endMs: (1_000_000 + 4 * 604_800) * 1000 });
    expect(lastCompleteEpoch((1_000_000 + 604_800 * 2 + 5) * 1000, schedule)).toBe(1);
    expect(() => epochWindow(-1, schedule)).toThrow(EmissionInputError);
    expect(() => epochWindow(1.5, schedule)).toThrow(EmissionInputError);
    expect(() => epochAt(0, { genesis: 0, epochSeconds: 0 })).toThrow(EmissionInputError);
  });
});

describe('epoch payout', () => {
  it('pays accruals in full when they fit', () => {
    const payout = epochPayout([['a', 5n], ['b', 7n]], 100n);
    expect(payout).toEqual({ shares: [['a', 5n], ['b', 7n]], accruedTotal: 12n, paid: 12n, capped: false });
  });

  it('shares pro rata with floored shares when accruals exceed the emission', () => {
    const payout = epochPayout([['a', 10n], ['b', 10n], ['c', 10n]], 10n);
    expect(payout.shares).toEqual([['a', 3n], ['b', 3n], ['c', 3n]]);
    expect(payout.paid).toBe(9n); // the 1 left over stays in the pool
    expect(payout.capped).toBe(true);
  });

  it('never over-pays, whatever the numbers', () => {
    let seed = 42n;
    const next = () => (seed = (seed * 6364136223846793005n + 1442695040888963407n) % (1n << 64n));
    for (let round = 0; round < 200; round++) {
      const entries: [number, bigint][] = Array.from({ length: Number(next() % 50n) + 1 }, (_, i) => [i, next() % (10n ** 24n)]);
      const available = next() % (10n ** 25n);
      const payout = epochPayout(entries, available);
      const sum = payout.shares.reduce((s, [, v]) => s + v, 0n);
      expect(sum).toBe(payout.paid);
      expect(payout.paid).toBeLessThanOrEqual(available);
      expect(payout.paid).toBeLessThanOrEqual(payout.accruedTotal);
      // Floors lose less than one base unit per operator.
      const best = payout.accruedTotal < available ? payout.accruedTotal : available;
      expect(best - payout.paid).toBeLessThan(BigInt(entries.length));
    }
  });

  it('leaves out zero shares and rejects negative amounts', () => {
    expect(epochPayout([['dust', 1n], ['big', 10n ** 20n]], 1000n).shares.map(([k]) => k)).toEqual(['big']);
    expect(() => epochPayout([['x', -1n]], 10n)).toThrow(EmissionInputError);
    expect(epochPayout([], 10n)).toEqual({ shares: [], accruedTotal: 0n, paid: 0n, capped: false });
  });
});
