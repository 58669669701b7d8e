import { describe, expect, it } from 'vitest';
import { REINSTATE_COOL_DOWN_MS, reinstateRefusal, type ReinstateCandidate } from './operator-action.ts';

const suspendedAt = 1_800_000_000_000;
const node = (overrides: Partial<ReinstateCandidate> = {}): ReinstateCandidate => ({
  state: 'suspended',
  resumeState: null,
  record: { suspendedAt, lastActivityAt: suspendedAt + 5_000 },
  ...overrides,
});

describe('reinstateRefusal', () => {
  it('lets a suspended node go once the cool-down has passed, not a moment before', () => {
    expect(reinstateRefusal(node(), suspendedAt + REINSTATE_COOL_DOWN_MS, REINSTATE_COOL_DOWN_MS)).toBeUndefined();
    const refusal = reinstateRefusal(node(), suspendedAt + REINSTATE_COOL_DOWN_MS - 1, REINSTATE_COOL_DOWN_MS);
    expect(refusal).toEqual({
      reason: `it was suspended at ${new Date(suspendedAt).toISOString()} and may be reinstated only 10 minutes later: retry after ${new Date(suspendedAt + REINSTATE_COOL_DOWN_MS).toISOString()}`,
      retryAt: suspendedAt + REINSTATE_COOL_DOWN_MS,
    });
    expect(reinstateRefusal(node(), suspendedAt, 0)).toBeUndefined();
  });

  it('treats an offline node by the state it returns to', () => {
    expect(reinstateRefusal(node({ state: 'offline', resumeState: 'suspended' }), suspendedAt + REINSTATE_COOL_DOWN_MS, REINSTATE_COOL_DOWN_MS)).toBeUndefined();
    expect(reinstateRefusal(node({ state: 'offline', resumeState: 'active' }), suspendedAt + REINSTATE_COOL_DOWN_MS, REINSTATE_COOL_DOWN_MS)?.reason).toBe('it is active, not suspended: there is nothing to reinstate');
  });

  it.each(['probation', 'active', 'degraded', 'retired'] as const)('refuses a %s node for good (no retry time)', (state) => {
    expect(reinstateRefusal(node({ state }), suspendedAt + 10 * REINSTATE_COOL_DOWN_MS, REINSTATE_COOL_DOWN_MS)).toEqual({ reason: `it is ${state}, not suspended: there is nothing to reinstate` });
  });

  it('counts the cool-down from the latest activity of a record older than the suspension stamp', () => {
    const old = node({ record: { lastActivityAt: suspendedAt } });
    expect(reinstateRefusal(old, suspendedAt + REINSTATE_COOL_DOWN_MS - 1, REINSTATE_COOL_DOWN_MS)?.retryAt).toBe(suspendedAt + REINSTATE_COOL_DOWN_MS);
    expect(reinstateRefusal(old, suspendedAt + REINSTATE_COOL_DOWN_MS, REINSTATE_COOL_DOWN_MS)).toBeUndefined();
  });
});
