import { describe, expect, it } from 'vitest';
import type { NodeState } from './reputation.ts';
import { MIN_VERIFIER_PASSES, verifierIneligibility, verifierPolicy, type VerifierStanding } from './verifiers.ts';

const seed = '0x00000000000000000000000000000000000000Aa';
const stranger = '0x00000000000000000000000000000000000000bb';
const policy = verifierPolicy([seed]);
const node = (over: Partial<VerifierStanding> = {}): VerifierStanding => ({
  operator: stranger,
  state: 'active',
  record: { verificationPasses: MIN_VERIFIER_PASSES, verificationFailures: 0 },
  ...over,
});

describe('verifierIneligibility', () => {
  it('admits an active node with enough passed checks and none failed', () => {
    expect(verifierIneligibility(node(), policy)).toBeNull();
    expect(verifierIneligibility(node({ record: { verificationPasses: MIN_VERIFIER_PASSES + 50, verificationFailures: 0 } }), policy)).toBeNull();
  });

  it('refuses a freshly registered node: no projection, no record, or probation', () => {
    expect(verifierIneligibility(node({ state: undefined, record: undefined }), policy)).toBe('node is new, not active');
    expect(verifierIneligibility(node({ state: 'probation', record: undefined }), policy)).toBe('node is probation, not active');
    expect(verifierIneligibility(node({ record: undefined }), policy)).toBe(`passed 0 of the ${MIN_VERIFIER_PASSES} spot checks a verifier needs`);
  });

  it('refuses every state but active, whatever the record or operator', () => {
    for (const state of ['probation', 'degraded', 'suspended', 'offline', 'retired'] as NodeState[]) {
      expect(verifierIneligibility(node({ state }), policy)).toBe(`node is ${state}, not active`);
      expect(verifierIneligibility(node({ state, operator: seed }), policy)).not.toBeNull();
    }
  });

  it('needs the minimum of passed checks, exactly', () => {
    expect(verifierIneligibility(node({ record: { verificationPasses: MIN_VERIFIER_PASSES - 1, verificationFailures: 0 } }), policy)).toBe(
      `passed ${MIN_VERIFIER_PASSES - 1} of the ${MIN_VERIFIER_PASSES} spot checks a verifier needs`,
    );
    expect(verifierIneligibility(node({ record: { verificationPasses: 3, verificationFailures: 0 } }), verifierPolicy([], 3))).toBeNull();
  });

  it('refuses a node that ever failed a check, however many it passed', () => {
    expect(verifierIneligibility(node({ record: { verificationPasses: 1000, verificationFailures: 1 } }), policy)).toBe('failed 1 spot check(s) of its own');
  });

  it('admits a seed operator’s active node without passed checks, in any case of its address', () => {
    expect(verifierIneligibility(node({ operator: seed, record: undefined }), policy)).toBeNull();
    expect(verifierIneligibility(node({ operator: seed.toUpperCase().replace('0X', '0x'), record: { verificationPasses: 0, verificationFailures: 0 } }), policy)).toBeNull();
  });

  it('holds a seed operator’s node to the state and to a clean record', () => {
    expect(verifierIneligibility(node({ operator: seed, state: 'probation' }), policy)).not.toBeNull();
    expect(verifierIneligibility(node({ operator: seed, record: { verificationPasses: 50, verificationFailures: 1 } }), policy)).toMatch(/failed 1/);
  });

  it('refuses rather than admits on a broken record', () => {
    expect(verifierIneligibility(node({ record: { verificationPasses: Number.NaN, verificationFailures: 0 } }), policy)).not.toBeNull();
    expect(verifierIneligibility(node({ record: { verificationPasses: 100, verificationFailures: Number.NaN } }), policy)).not.toBeNull();
  });

  it('trusts no one without a seed list', () => {
    expect(verifierIneligibility(node({ operator: seed, record: undefined }), verifierPolicy())).not.toBeNull();
    expect(verifierPolicy().minPasses).toBe(MIN_VERIFIER_PASSES);
  });
});
