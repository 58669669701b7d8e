/** Rewards/airdrop tree helpers, off chain (the on-chain side is in gitblock.test.ts). */
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { getAddress, keccak256, slice, toHex, type Address } from 'viem';
import { describe, expect, it } from 'vitest';
import {
  buildAirdropTree,
  buildRewardsTree,
  MerkleInputError,
  REWARDS_LEAF_ENCODING,
  rewardsLeafHash,
  verifyAirdropClaim,
  verifyRewardClaim,
} from './merkle.ts';

const addr = (i: number): Address => getAddress(slice(keccak256(toHex(`operator-${i}`)), 12));
const GBT = 10n ** 18n;

describe('buildRewardsTree', () => {
  const entries = [
    { operator: addr(1), amount: 1_000n * GBT },
    { operator: addr(2), amount: 2_500n * GBT + 5n * 10n ** 17n },
    { operator: addr(3), amount: 1n },
  ];

  it('totals exactly and gives every operator a verifying proof', () => {
    const tree = buildRewardsTree(7n, entries);
    expect(tree.total).toBe(3_500n * GBT + 5n * 10n ** 17n + 1n);
    expect(tree.claims.size).toBe(3);
    for (const e of entries) {
      const claim = tree.claims.get(e.operator);
      expect(claim?.amount).toBe(e.amount);
      expect(claim && verifyRewardClaim(tree.root, claim)).toBe(true);
    }
  });

  it('matches StandardMerkleTree and the viem leaf encoding', () => {
    const tree = buildRewardsTree(7n, entries);
    const reference = StandardMerkleTree.of(
      entries.map((e) => [7n, e.operator, e.amount]),
      [...REWARDS_LEAF_ENCODING],
    );
    expect(tree.root).toBe(reference.root);
    for (const e of entries) {
      expect(rewardsLeafHash(7n, e.operator, e.amount)).toBe(reference.leafHash([7n, e.operator, e.amount]));
    }
  });

  it('does not depend on entry order, and does depend on the epoch', () => {
    const a = buildRewardsTree(7n, entries);
    const b = buildRewardsTree(7n, [...entries].reverse());
    expect(b.root).toBe(a.root);
    expect(buildRewardsTree(8n, entries).root).not.toBe(a.root);
  });

  it('rejects a tampered claim', () => {
    const tree = buildRewardsTree(7n, entries);
    const claim = tree.claims.get(addr(1));
    if (!claim) throw new Error('missing claim');
    expect(verifyRewardClaim(tree.root, { ...claim, amount: claim.amount + 1n })).toBe(false);
    expect(verifyRewardClaim(tree.root, { ...claim, operator: addr(2) })).toBe(false);
    expect(verifyRewardClaim(tree.root, { ...claim, epoch: 8n })).toBe(false);
    expect(verifyRewardClaim(tree.root, { ...claim, proof: [keccak256('0x01'), ...claim.proof.slice(1)] })).toBe(false);
  });

  it('handles a single operator (empty proof)', () => {
    const tree = buildRewardsTree(1n, [{ operator: addr(1), amount: 5n }]);
    const claim = tree.claims.get(addr(1));
    expect(claim?.proof).toEqual([]);
    expect(claim && verifyRewardClaim(tree.root, claim)).toBe(true);
  });

  it('rejects bad input', () => {
    expect(() => buildRewardsTree(1n, [])).toThrow(MerkleInputError);
    expect(() => buildRewardsTree(-1n, entries)).toThrow(/epoch/);
    expect(() => buildRewardsTree(1n << 64n, entries)).toThrow(/epoch/);
    expect(() => buildRewardsTree(1n, [{ operator: addr(1), amount: 0n }])).toThrow(/amount/);
    expect(() => buildRewardsTree(1n, [{ operator: addr(1), amount: 1.5 as unknown as bigint }])).toThrow(/bigint/);
    expect(() => buildRewardsTree(1n, [{ operator: '0x1234', amount: 1n }])).toThrow(/not an address/);
    const lower = addr(1).toLowerCase() as Address;
    expect(() =>
      buildRewardsTree(1n, [
        { operator: addr(1), amount: 1n },
        { operator: lower, amount: 2n },
      ]),
    ).toThrow(/twice/);
  });
});

describe('buildAirdropTree', () => {
  it('builds verifying claims and rejects duplicates', () => {
    const tree = buildAirdropTree([
      { account: addr(1), amount: 10n * GBT },
      { account: addr(2), amount: 20n * GBT },
    ]);
    expect(tree.total).toBe(30n * GBT);
    const claim = tree.claims.get(addr(2));
    expect(claim && verifyAirdropClaim(tree.root, claim)).toBe(true);
    expect(claim && verifyAirdropClaim(tree.root, { ...claim, amount: 21n * GBT })).toBe(false);
    expect(() =>
      buildAirdropTree([
        { account: addr(1), amount: 1n },
        { account: addr(1), amount: 1n },
      ]),
    ).toThrow(/twice/);
  });
});
