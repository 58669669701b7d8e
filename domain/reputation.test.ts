import { describe, expect, it } from 'vitest';
import {
  applyNodeEvent,
  EMA_ALPHA,
  LONGEVITY_HALF_MS,
  MIN_SUCCESS_RATE,
  newNodeLifecycle,
  newNodeRecord,
  nextState,
  PROBATION_REQUESTS,
  RECENT_WINDOW,
  recentSuccessRate,
  recordEvent,
  RECOVERY_REQUESTS,
  reputation,
  REPUTATION_WEIGHTS,
  SUSPEND_AFTER_CONSECUTIVE_VERIFICATION_FAILURES,
  SUSPEND_AFTER_VERIFICATION_FAILURES,
  VERIFICATION_FAILURE_WEIGHT,
  isRoutable,
  routableStates,
  type NodeEvent,
  type NodeStanding,
} from './reputation.ts';

const t0 = 1_700_000_000_000;
let clock = t0;
const ok = (extra: Partial<Extract<NodeEvent, { type: 'request' }>> = {}): NodeEvent => ({ type: 'request', ok: true, at: ++clock, ...extra });
const fail = (): NodeEvent => ({ type: 'request', ok: false, at: ++clock });
const verdict = (passed: boolean): NodeEvent => ({ type: 'verification', passed, at: ++clock });
const ev = (type: 'registered' | 'deregistered' | 'reinstate' | 'retire'): NodeEvent => ({ type, at: ++clock });

function fresh(): NodeStanding {
  return { lifecycle: newNodeLifecycle(), record: newNodeRecord(t0) };
}
function run(node: NodeStanding, events: NodeEvent[]): NodeStanding {
  return events.reduce(applyNodeEvent, node);
}
const times = <T>(n: number, f: () => T): T[] => Array.from({ length: n }, f);
function activeNode(): NodeStanding {
  return run(fresh(), times(PROBATION_REQUESTS, () => ok()));
}

describe('the thresholds', () => {
  it('are the documented ones', () => {
    expect({ PROBATION_REQUESTS, RECENT_WINDOW, MIN_SUCCESS_RATE, RECOVERY_REQUESTS, SUSPEND_AFTER_VERIFICATION_FAILURES, SUSPEND_AFTER_CONSECUTIVE_VERIFICATION_FAILURES }).toEqual({
      PROBATION_REQUESTS: 20,
      RECENT_WINDOW: 20,
      MIN_SUCCESS_RATE: 0.9,
      RECOVERY_REQUESTS: 10,
      SUSPEND_AFTER_VERIFICATION_FAILURES: 3,
      SUSPEND_AFTER_CONSECUTIVE_VERIFICATION_FAILURES: 2,
    });
    const w = REPUTATION_WEIGHTS;
    expect(w.verification + w.success + w.uptime + w.performance + w.longevity).toBeCloseTo(1, 12);
  });
});

describe('recordEvent', () => {
  it('counts liveness samples; only a live one is activity', () => {
    let r = newNodeRecord(t0);
    r = recordEvent(r, { type: 'liveness', live: true, at: t0 + 1_000 });
    r = recordEvent(r, { type: 'liveness', live: false, at: t0 + 2_000 });
    r = recordEvent(r, { type: 'liveness', live: true, at: t0 + 3_000 });
    r = recordEvent(r, { type: 'liveness', live: false, at: t0 + 4_000 });
    expect(r).toMatchObject({ uptimeChecks: 4, uptimeLive: 2, lastActivityAt: t0 + 3_000 });
    // A node that is seldom live ranks below one that always is, all else equal.
    const always = { ...r, uptimeLive: 4 };
    expect(reputation(always)).toBeGreaterThan(reputation(r));
    // A record carried over from before uptime was sampled still counts from zero.
    const { uptimeChecks: _c, uptimeLive: _l, ...old } = newNodeRecord(t0);
    expect(recordEvent(old as never, { type: 'liveness', live: true, at: t0 })).toMatchObject({ uptimeChecks: 1, uptimeLive: 1 });
  });

  it('counts outcomes and keeps moving averages of latency and throughput', () => {
    let r = newNodeRecord(t0);
    r = recordEvent(r, ok({ latencyMs: 100, tokensPerSecond: 50 }));
    expect(r.latencyEmaMs).toBe(100);
    expect(r.tokensPerSecondEma).toBe(50);
    r = recordEvent(r, ok({ latencyMs: 200, tokensPerSecond: 30 }));
    expect(r.latencyEmaMs).toBeCloseTo(100 + EMA_ALPHA * 100);
    expect(r.tokensPerSecondEma).toBeCloseTo(50 - EMA_ALPHA * 20);
    r = recordEvent(r, fail());
    expect(r).toMatchObject({ requestsServed: 2, failures: 1, recent: [1, 1, 0], cleanStreak: 0, servedSinceVerificationFailure: 2 });
  });

  it('drops nonsense measurements instead of averaging them in', () => {
    let r = recordEvent(newNodeRecord(t0), ok({ latencyMs: 100, tokensPerSecond: 50 }));
    r = recordEvent(r, ok({ latencyMs: -5, tokensPerSecond: Number.NaN }));
    r = recordEvent(r, ok({ latencyMs: Number.POSITIVE_INFINITY, tokensPerSecond: 0 }));
    expect(r.latencyEmaMs).toBe(100);
    expect(r.tokensPerSecondEma).toBe(50);
    expect(r.requestsServed).toBe(3);
  });

  it('keeps only the recent window of outcomes', () => {
    const r = run(fresh(), [...times(RECENT_WINDOW, fail), ...times(5, () => ok())]).record;
    expect(r.recent).toHaveLength(RECENT_WINDOW);
    expect(recentSuccessRate(r)).toBe(5 / RECENT_WINDOW);
  });

  it('never moves time backwards on a late signal', () => {
    let r = recordEvent(newNodeRecord(t0), { type: 'request', ok: true, at: t0 + 10_000 });
    r = recordEvent(r, { type: 'verification', passed: true, at: t0 + 5_000 });
    expect(r.lastActivityAt).toBe(t0 + 10_000);
    r = recordEvent(r, { type: 'request', ok: true, at: t0 - 1_000 });
    expect(r.firstSeenAt).toBe(t0 - 1_000);
  });
});

describe('the lifecycle', () => {
  it('ends probation after the threshold of successful requests', () => {
    const almost = run(fresh(), times(PROBATION_REQUESTS - 1, () => ok()));
    expect(almost.lifecycle.state).toBe('probation');
    expect(applyNodeEvent(almost, ok()).lifecycle.state).toBe('active');
  });

  it('keeps a node on probation while its success rate is low', () => {
    const flaky = run(fresh(), times(PROBATION_REQUESTS, () => [ok(), ok(), ok(), fail()]).flat());
    expect(flaky.record.requestsServed).toBeGreaterThanOrEqual(PROBATION_REQUESTS);
    expect(recentSuccessRate(flaky.record)).toBeLessThan(MIN_SUCCESS_RATE);
    expect(flaky.lifecycle.state).toBe('probation');
  });

  it('restarts probation on a failed verdict', () => {
    let node = run(fresh(), [...times(PROBATION_REQUESTS - 1, () => ok()), verdict(false)]);
    expect(node.lifecycle.state).toBe('probation');
    node = run(node, times(PROBATION_REQUESTS - 1, () => ok()));
    expect(node.lifecycle.state).toBe('probation');
    expect(applyNodeEvent(node, ok()).lifecycle.state).toBe('active');
  });

  it('degrades an active node whose recent success rate falls below the minimum', () => {
    let node = activeNode();
    node = run(node, [fail(), fail()]); // 18 / 20 = 0.9: still fine
    expect(node.lifecycle.state).toBe('active');
    node = applyNodeEvent(node, fail()); // 17 / 20
    expect(node.lifecycle.state).toBe('degraded');
  });

  it('degrades an active node on a failed verdict', () => {
    expect(applyNodeEvent(activeNode(), verdict(false)).lifecycle.state).toBe('degraded');
  });

  it('brings a degraded node back after enough clean requests in a row', () => {
    let node = run(activeNode(), [fail(), fail(), fail()]);
    expect(node.lifecycle.state).toBe('degraded');
    node = run(node, [...times(RECOVERY_REQUESTS - 1, () => ok()), fail(), ...times(RECOVERY_REQUESTS - 1, () => ok())]);
    expect(node.lifecycle.state).toBe('degraded');
    node = applyNodeEvent(node, ok());
    expect(node.lifecycle.state).toBe('active');
    // A success right after recovery does not bounce it back although old failures are in the window.
    expect(applyNodeEvent(node, ok()).lifecycle.state).toBe('active');
  });

  it('suspends after three failed verdicts, from any state', () => {
    for (const start of [fresh(), activeNode()]) {
      const node = run(start, [verdict(false), verdict(true), verdict(false), verdict(true)]);
      expect(node.lifecycle.state).not.toBe('suspended');
      expect(applyNodeEvent(node, verdict(false)).lifecycle.state).toBe('suspended');
    }
  });

  it('suspends after two failed verdicts in a row', () => {
    const node = run(activeNode(), [verdict(false), verdict(false)]);
    expect(node.lifecycle.state).toBe('suspended');
  });

  it('stays suspended whatever the node does, until an operator reinstates it on probation', () => {
    let node = run(activeNode(), [verdict(false), verdict(false), ...times(50, () => ok()), verdict(true)]);
    expect(node.lifecycle.state).toBe('suspended');
    node = run(node, [ev('deregistered'), ev('registered')]);
    expect(node.lifecycle.state).toBe('suspended');
    node = applyNodeEvent(node, ev('reinstate'));
    expect(node.lifecycle.state).toBe('probation');
    expect(node.record).toMatchObject({ strikes: 0, consecutiveVerificationFailures: 0, verificationFailures: 2 });
    // One more failed verdict does not suspend it again: the strikes were cleared.
    expect(applyNodeEvent(node, verdict(false)).lifecycle.state).toBe('probation');
  });

  // Replaces the old rule that five failed requests in a row suspended a node (issue 16): a
  // crash or a restart is not a lie, and two honest nodes killed five times each left the
  // network dark. Failures now cost reputation and traffic, never the node's standing.
  it('never suspends a node for failed requests, however many in a row, from any state', () => {
    for (const [start, expected] of [[fresh(), 'probation'], [activeNode(), 'degraded']] as const) {
      const node = run(start, times(100, fail));
      expect(node.lifecycle.state).toBe(expected);
      expect(node.record.strikes).toBe(0);
      expect(node.record.suspendedAt).toBeNull();
      expect(isRoutable(node.lifecycle.state)).toBe(true);
    }
    // Also while offline: crashes seen after it left do not suspend it on return.
    const back = run(activeNode(), [ev('deregistered'), ...times(50, fail), ev('registered')]);
    expect(back.lifecycle.state).toBe('degraded');
  });

  it('makes failed requests cost reputation, so the router gives the node less traffic', () => {
    const steady = run(activeNode(), times(20, () => ok()));
    const crashy = run(activeNode(), [...times(10, () => ok()), ...times(10, fail)]);
    expect(reputation(crashy.record)).toBeLessThan(reputation(steady.record));
    expect(crashy.lifecycle.state).toBe('degraded');
    // Recovers on its own once it serves cleanly again: no operator needed.
    expect(run(crashy, times(RECOVERY_REQUESTS, () => ok())).lifecycle.state).toBe('active');
  });

  it('still suspends for failed checks while it also fails requests', () => {
    const node = run(activeNode(), [fail(), verdict(false), fail(), verdict(false)]);
    expect(node.lifecycle.state).toBe('suspended');
  });

  it('clears the run of failed requests on reinstatement', () => {
    let node = run(fresh(), [...times(8, fail), verdict(false), verdict(false)]);
    expect(node.lifecycle.state).toBe('suspended');
    node = applyNodeEvent(node, ev('reinstate'));
    expect(node.lifecycle.state).toBe('probation');
    expect(node.record).toMatchObject({ recent: [], cleanStreak: 0, failures: 8, strikes: 0 });
    // Its success rate starts over: a reinstated node is not held back by failures from before.
    expect(recentSuccessRate(node.record)).toBe(1);
  });

  it('clears the failed verdicts in a row on reinstatement, also when it is reinstated while offline', () => {
    let node = run(activeNode(), [ev('deregistered'), ...times(SUSPEND_AFTER_CONSECUTIVE_VERIFICATION_FAILURES, () => verdict(false))]);
    expect(node.lifecycle).toEqual({ state: 'offline', resumeState: 'suspended' });
    node = applyNodeEvent(node, ev('reinstate'));
    expect(node.lifecycle).toEqual({ state: 'offline', resumeState: 'probation' });
    expect(node.record).toMatchObject({ strikes: 0, consecutiveVerificationFailures: 0, recent: [] });
    node = run(node, [ev('registered'), verdict(false)]);
    expect(node.lifecycle.state).toBe('probation');
  });

  it('stamps when it was suspended, keeps the stamp while suspended, and after reinstatement', () => {
    const before = activeNode();
    expect(before.record.suspendedAt).toBeNull();
    let node = run(before, [verdict(false), verdict(false)]);
    expect(node.lifecycle.state).toBe('suspended');
    const at = clock;
    expect(node.record.suspendedAt).toBe(at);
    // A late verdict, dated before the suspension, moves neither the stamp nor time back.
    node = run(node, [{ type: 'verification', passed: false, at: t0 }, ok(), ev('deregistered'), ev('registered')]);
    expect(node.record.suspendedAt).toBe(at);
    node = applyNodeEvent(node, ev('reinstate'));
    expect(node.record.suspendedAt).toBe(at);
  });

  it('ignores reinstate for a node that is not suspended', () => {
    const node = applyNodeEvent(activeNode(), ev('reinstate'));
    expect(node.lifecycle.state).toBe('active');
  });

  it('goes offline on deregistration and back to its previous state on registration', () => {
    for (const [start, state] of [[fresh(), 'probation'], [activeNode(), 'active'], [run(activeNode(), [verdict(false)]), 'degraded']] as const) {
      let node = applyNodeEvent(start, ev('deregistered'));
      expect(node.lifecycle).toEqual({ state: 'offline', resumeState: state });
      node = applyNodeEvent(node, ev('deregistered'));
      expect(node.lifecycle).toEqual({ state: 'offline', resumeState: state });
      node = applyNodeEvent(node, ev('registered'));
      expect(node.lifecycle).toEqual({ state, resumeState: null });
    }
  });

  it('counts late verdicts while offline toward the state it returns to', () => {
    let node = run(activeNode(), [ev('deregistered'), verdict(false), verdict(false)]);
    expect(node.lifecycle).toEqual({ state: 'offline', resumeState: 'suspended' });
    node = applyNodeEvent(node, ev('registered'));
    expect(node.lifecycle.state).toBe('suspended');
  });

  it('is final once retired', () => {
    const node = applyNodeEvent(activeNode(), ev('retire'));
    expect(node.lifecycle.state).toBe('retired');
    expect(run(node, [ev('registered'), ev('reinstate'), ok(), verdict(false)])).toEqual(node);
  });

  it('nextState leaves a registered node alone on registered', () => {
    const node = activeNode();
    expect(nextState(node.lifecycle, node.record, ev('registered'))).toEqual(node.lifecycle);
  });
});

describe('isRoutable', () => {
  it('admits exactly the routable states, and nothing unknown', () => {
    for (const state of ['probation', 'active', 'degraded', 'suspended', 'offline', 'retired'] as const) {
      expect(isRoutable(state)).toBe(routableStates.includes(state));
    }
    expect(['suspended', 'offline', 'retired'].some(isRoutable)).toBe(false);
    expect(isRoutable(undefined)).toBe(false);
    expect(isRoutable('banished')).toBe(false);
  });
});

describe('reputation', () => {
  it('is 0.5 for a node with no record', () => {
    expect(reputation(undefined)).toBe(0.5);
    expect(reputation(newNodeRecord(t0))).toBeCloseTo(0.5, 12);
    expect(reputation(newNodeRecord(t0), { latencyMs: 100, tokensPerSecond: 10 })).toBeCloseTo(0.5, 12);
  });

  it('weighs verification highest', () => {
    const base = newNodeRecord(t0);
    const verified = { ...base, verificationPasses: 10 };
    const served = { ...base, requestsServed: 10 };
    expect(reputation(verified)).toBeGreaterThan(reputation(served));
    const failedChecks = { ...base, verificationFailures: 10 };
    const failedRequests = { ...base, failures: 10 };
    expect(reputation(failedChecks)).toBeLessThan(reputation(failedRequests));
    // A node that served well but failed most of its spot checks is below a newcomer.
    const liar = { ...base, requestsServed: 25, verificationPasses: 2, verificationFailures: 3 };
    expect(reputation(liar)).toBeLessThan(0.5);
  });

  it('follows the documented formula', () => {
    const record = {
      ...newNodeRecord(t0),
      requestsServed: 8,
      failures: 0,
      verificationPasses: 3,
      verificationFailures: 1,
      latencyEmaMs: 100,
      tokensPerSecondEma: 60,
      uptimeChecks: 8,
      uptimeLive: 6,
      lastActivityAt: t0 + LONGEVITY_HALF_MS,
    };
    const peers = { latencyMs: 200, tokensPerSecond: 30 };
    const verification = 4 / (3 + 2 + VERIFICATION_FAILURE_WEIGHT * 1);
    const success = 9 / 10;
    const uptime = 7 / 10;
    const performance = (2 / 3 + 2 / 3) / 2;
    const longevity = 0.75;
    expect(reputation(record, peers)).toBeCloseTo(0.5 * verification + 0.2 * success + 0.1 * uptime + 0.1 * performance + 0.1 * longevity, 12);
    // Without peers, performance is neutral.
    expect(reputation(record)).toBeCloseTo(0.5 * verification + 0.2 * success + 0.1 * uptime + 0.1 * 0.5 + 0.1 * longevity, 12);
  });

  it('rewards being faster than the peers and punishes being slower', () => {
    const r = (latencyEmaMs: number, tokensPerSecondEma: number) => reputation({ ...newNodeRecord(t0), latencyEmaMs, tokensPerSecondEma }, { latencyMs: 200, tokensPerSecond: 30 });
    expect(r(200, 30)).toBeCloseTo(0.5, 12);
    expect(r(100, 60)).toBeGreaterThan(0.5);
    expect(r(400, 15)).toBeLessThan(0.5);
    expect(r(0, 1e9)).toBeLessThanOrEqual(1);
  });

  it('stays within 0..1 at the extremes', () => {
    const best = { ...newNodeRecord(t0), requestsServed: 1e9, verificationPasses: 1e9, uptimeChecks: 1e9, uptimeLive: 1e9, latencyEmaMs: 1, tokensPerSecondEma: 1e6, lastActivityAt: t0 + 1e15 };
    const worst = { ...newNodeRecord(t0), failures: 1e9, verificationFailures: 1e9, uptimeChecks: 1e9, latencyEmaMs: 1e9, tokensPerSecondEma: 1e-9 };
    const peers = { latencyMs: 200, tokensPerSecond: 30 };
    expect(reputation(best, peers)).toBeLessThanOrEqual(1);
    expect(reputation(best, peers)).toBeGreaterThan(0.95);
    expect(reputation(worst, peers)).toBeGreaterThanOrEqual(0);
    expect(reputation(worst, peers)).toBeLessThan(0.1);
  });
});
