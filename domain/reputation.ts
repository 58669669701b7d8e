/**
 * A node's track record, its lifecycle and its reputation: the pure core of the node actor
 * (`workflows/node-actor.ts`). Pure and deterministic, so workflow code imports it: no clock
 * reads here, every time is passed in by the caller (inside a workflow, `Date.now()` is the
 * workflow's deterministic clock; in domain code it would not be).
 *
 * ## Lifecycle
 *
 * ```text
 *            PROBATION_REQUESTS ok, no verification failure among them, success rate ok
 * probation ──────────────────────────────────────────────────────────────────────────▶ active
 *                    request failure with recent success rate < MIN_SUCCESS_RATE,
 *   active ───────── or any verification failure ─────────────────────────────────────▶ degraded
 * degraded ───────── RECOVERY_REQUESTS clean requests in a row ───────────────────────▶ active
 *      any ───────── SUSPEND_AFTER_VERIFICATION_FAILURES strikes, or
 *                    SUSPEND_AFTER_CONSECUTIVE_VERIFICATION_FAILURES in a row ────────▶ suspended
 * suspended ──────── operator `reinstate` (strikes and failure run cleared) ──────────▶ probation
 *      any ───────── deregistered ────────────────────────────────────────────────────▶ offline
 *  offline ───────── registered ──────────────────────────────────────────────────────▶ the state it left
 *      any ───────── operator `retire` ───────────────────────────────────────────────▶ retired (final)
 * ```
 *
 * Availability and honesty are judged apart. A failed request (a crash, a timeout, an attempt
 * superseded by a failover) is a matter of availability: it lowers the success rate, so the
 * reputation and the share of traffic the router gives the node, and may degrade it, but never
 * suspends it; an honest node whose machine restarts twenty times is still honest. Only failed
 * spot checks (wrong answers) suspend.
 *
 * While offline, late outcomes and verdicts still count (they are about requests served
 * before it left), and the transitions they cause apply to the state it will come back to:
 * a node cannot shed a suspension by deregistering and registering again.
 */

/** Every lifecycle state. Only `probation`, `active` and `degraded` nodes may be routed to (see {@link isRoutable}). */
export type NodeState = 'probation' | 'active' | 'degraded' | 'suspended' | 'offline' | 'retired';

/** The states a node can be in while registered, i.e. where an offline node returns to. */
export type OnlineState = 'probation' | 'active' | 'degraded' | 'suspended';

/** The states the router may send requests to. */
export const routableStates: readonly NodeState[] = ['probation', 'active', 'degraded'];

/**
 * Whether a node in this state may be given work: the one rule the router, the edge (which
 * refuses a suspended or retired node's polls) and the gateway's advertised capacity follow.
 * A state this code does not know is not routable.
 */
export function isRoutable(state: string | undefined): boolean {
  return state !== undefined && (routableStates as readonly string[]).includes(state);
}

/** Successful requests, with no verification failure among them, that end probation. */
export const PROBATION_REQUESTS = 20;
/** How many of the most recent request outcomes the success rate is measured over. */
export const RECENT_WINDOW = 20;
/** Below this success rate over the recent window, an active node is degraded. */
export const MIN_SUCCESS_RATE = 0.9;
/** Clean requests in a row (no failure, no failed verdict) that bring a degraded node back. */
export const RECOVERY_REQUESTS = 10;
/** Failed verdicts since the last reinstatement that suspend a node. */
export const SUSPEND_AFTER_VERIFICATION_FAILURES = 3;
/** Failed verdicts in a row that suspend a node. */
export const SUSPEND_AFTER_CONSECUTIVE_VERIFICATION_FAILURES = 2;
/** Weight of the newest sample in the latency and throughput moving averages. */
export const EMA_ALPHA = 0.2;
/**
 * How many passed spot checks one failed check outweighs. Checks sample only a share of the
 * requests, so one caught lie stands for several uncaught ones: lying must cost far more
 * than honesty earns.
 */
export const VERIFICATION_FAILURE_WEIGHT = 4;
/** The span of activity at which the longevity term is halfway to its maximum. */
export const LONGEVITY_HALF_MS = 7 * 24 * 60 * 60 * 1000;

/** How much each component counts in {@link reputation}; they sum to 1. */
export const REPUTATION_WEIGHTS = {
  verification: 0.5,
  success: 0.2,
  uptime: 0.1,
  performance: 0.1,
  longevity: 0.1,
} as const;

/**
 * Everything the network has observed about one node. Plain JSON (no `undefined`, no
 * classes): it travels through continue-as-new and is projected into MongoDB as is.
 */
export interface NodeRecord {
  /** Requests the node completed. */
  requestsServed: number;
  /** Requests that failed or timed out while assigned to the node. */
  failures: number;
  /** Moving average of time to first token, ms; null before the first measured request. */
  latencyEmaMs: number | null;
  /** Moving average of generation speed, tokens/s; null before the first measured request. */
  tokensPerSecondEma: number | null;
  /** Spot checks the node's answers passed. */
  verificationPasses: number;
  /** Spot checks the node's answers failed, over its whole life. */
  verificationFailures: number;
  /** Failed spot checks since the last passed one. */
  consecutiveVerificationFailures: number;
  /** Failed spot checks since the last reinstatement: what suspension counts. */
  strikes: number;
  /** Outcomes of the most recent requests, oldest first, 1 = ok, 0 = failed; at most RECENT_WINDOW. */
  recent: number[];
  /** Successful requests since the last failure or failed verdict. */
  cleanStreak: number;
  /** Successful requests since the last failed verdict (or since the record began). */
  servedSinceVerificationFailure: number;
  /** Liveness samples taken while the node was registered (see the node actor). */
  uptimeChecks: number;
  /** Of those, the samples that found its heartbeat live. */
  uptimeLive: number;
  /** When the node was first seen, ms since epoch. */
  firstSeenAt: number;
  /** The latest event time seen, ms since epoch. */
  lastActivityAt: number;
  /**
   * When the node was last suspended, ms since epoch; null if never. Operators may ask for
   * reinstatement only a cool-down after it. Absent from records carried over from before it
   * was kept.
   */
  suspendedAt: number | null;
}

/** Where a node is in its lifecycle. */
export interface NodeLifecycle {
  state: NodeState;
  /** While offline: the state the node returns to when it registers again; otherwise null. */
  resumeState: OnlineState | null;
}

/** Something that happened to a node, as the node actor feeds it to {@link applyNodeEvent}. */
export type NodeEvent =
  | { type: 'request'; ok: boolean; latencyMs?: number | undefined; tokensPerSecond?: number | undefined; at: number }
  | { type: 'verification'; passed: boolean; at: number }
  /** A sample of whether the registered node's heartbeat is live in the bucket. */
  | { type: 'liveness'; live: boolean; at: number }
  | { type: 'registered'; at: number }
  | { type: 'deregistered'; at: number }
  | { type: 'reinstate'; at: number }
  | { type: 'retire'; at: number };

/** Peer medians that latency and throughput are judged against. */
export interface PeerMedians {
  latencyMs: number;
  tokensPerSecond: number;
}

/**
 * An empty record for a node first seen at `at`.
 *
 * @example
 * const record = newNodeRecord(now); // in a workflow, `now` comes from the deterministic workflow clock
 */
export function newNodeRecord(at: number): NodeRecord {
  return {
    requestsServed: 0,
    failures: 0,
    latencyEmaMs: null,
    tokensPerSecondEma: null,
    verificationPasses: 0,
    verificationFailures: 0,
    consecutiveVerificationFailures: 0,
    strikes: 0,
    recent: [],
    cleanStreak: 0,
    servedSinceVerificationFailure: 0,
    uptimeChecks: 0,
    uptimeLive: 0,
    firstSeenAt: at,
    lastActivityAt: at,
    suspendedAt: null,
  };
}

/** A new node starts on probation. */
export function newNodeLifecycle(): NodeLifecycle {
  return { state: 'probation', resumeState: null };
}

/** Success rate over the recent window; 1 when there is no outcome yet. */
export function recentSuccessRate(record: NodeRecord): number {
  if (record.recent.length === 0) return 1;
  return record.recent.reduce((sum, x) => sum + x, 0) / record.recent.length;
}

function ema(previous: number | null, sample: number | undefined, valid: (x: number) => boolean): number | null {
  // Outcomes are reported about untrusted nodes: a nonsense sample is dropped, not averaged in.
  if (sample === undefined || !Number.isFinite(sample) || !valid(sample)) return previous;
  return previous === null ? sample : previous + EMA_ALPHA * (sample - previous);
}

/**
 * The record after one event. Counts only; lifecycle rules are in {@link nextState}. Lifecycle
 * events (registration, operator actions) only move `lastActivityAt`.
 */
export function recordEvent(record: NodeRecord, event: NodeEvent): NodeRecord {
  // Signals may arrive out of order (a verdict lands long after its request): never go back in time.
  const lastActivityAt = Math.max(record.lastActivityAt, event.at);
  const firstSeenAt = Math.min(record.firstSeenAt, event.at);
  switch (event.type) {
    case 'request': {
      const recent = [...record.recent, event.ok ? 1 : 0].slice(-RECENT_WINDOW);
      if (!event.ok) {
        return { ...record, failures: record.failures + 1, recent, cleanStreak: 0, firstSeenAt, lastActivityAt };
      }
      return {
        ...record,
        requestsServed: record.requestsServed + 1,
        latencyEmaMs: ema(record.latencyEmaMs, event.latencyMs, (x) => x >= 0),
        tokensPerSecondEma: ema(record.tokensPerSecondEma, event.tokensPerSecond, (x) => x > 0),
        recent,
        cleanStreak: record.cleanStreak + 1,
        servedSinceVerificationFailure: record.servedSinceVerificationFailure + 1,
        firstSeenAt,
        lastActivityAt,
      };
    }
    case 'verification':
      if (event.passed) {
        return { ...record, verificationPasses: record.verificationPasses + 1, consecutiveVerificationFailures: 0, firstSeenAt, lastActivityAt };
      }
      return {
        ...record,
        verificationFailures: record.verificationFailures + 1,
        consecutiveVerificationFailures: record.consecutiveVerificationFailures + 1,
        strikes: record.strikes + 1,
        cleanStreak: 0,
        servedSinceVerificationFailure: 0,
        firstSeenAt,
        lastActivityAt,
      };
    case 'liveness':
      // Records carried over from before uptime was sampled lack the counts.
      return {
        ...record,
        uptimeChecks: (record.uptimeChecks ?? 0) + 1,
        uptimeLive: (record.uptimeLive ?? 0) + (event.live ? 1 : 0),
        // Only a live sample is activity: a silent node's history does not grow longer.
        ...(event.live ? { firstSeenAt, lastActivityAt } : {}),
      };
    default:
      return { ...record, firstSeenAt, lastActivityAt };
  }
}

/**
 * Whether the record has earned a suspension: failed spot checks only. Failed requests never
 * count here (see the lifecycle above).
 */
export function shouldSuspend(record: NodeRecord): boolean {
  return (
    record.strikes >= SUSPEND_AFTER_VERIFICATION_FAILURES ||
    record.consecutiveVerificationFailures >= SUSPEND_AFTER_CONSECUTIVE_VERIFICATION_FAILURES
  );
}

/** The transition of a registered node; `record` already includes the event. */
function nextOnlineState(state: OnlineState, record: NodeRecord, event: NodeEvent): OnlineState {
  if (state === 'suspended') return event.type === 'reinstate' ? 'probation' : 'suspended';
  if (event.type === 'verification' && !event.passed && shouldSuspend(record)) return 'suspended';
  switch (state) {
    case 'probation':
      if (
        event.type === 'request' &&
        event.ok &&
        record.servedSinceVerificationFailure >= PROBATION_REQUESTS &&
        recentSuccessRate(record) >= MIN_SUCCESS_RATE
      ) {
        return 'active';
      }
      return 'probation';
    case 'active':
      if (event.type === 'verification' && !event.passed) return 'degraded';
      // Judged on failures only: a success never lowers the rate, and judging on successes
      // would send a node that just recovered straight back while old failures are still in
      // the window.
      if (event.type === 'request' && !event.ok && recentSuccessRate(record) < MIN_SUCCESS_RATE) return 'degraded';
      return 'active';
    case 'degraded':
      if (event.type === 'request' && event.ok && record.cleanStreak >= RECOVERY_REQUESTS) return 'active';
      return 'degraded';
  }
}

/**
 * The lifecycle after `event`, given the record that already includes it (see
 * {@link applyNodeEvent}, which does both). `retired` is final; `offline` remembers where it
 * returns to, and outcomes that arrive while offline move that remembered state.
 *
 * @example
 * const record = recordEvent(before.record, event);
 * const lifecycle = nextState(before.lifecycle, record, event);
 */
export function nextState(lifecycle: NodeLifecycle, record: NodeRecord, event: NodeEvent): NodeLifecycle {
  const { state } = lifecycle;
  if (state === 'retired') return lifecycle;
  if (event.type === 'retire') return { state: 'retired', resumeState: null };
  if (state === 'offline') {
    const resume = lifecycle.resumeState ?? 'probation';
    if (event.type === 'registered') return { state: resume, resumeState: null };
    if (event.type === 'deregistered') return lifecycle;
    return { state: 'offline', resumeState: nextOnlineState(resume, record, event) };
  }
  if (event.type === 'deregistered') return { state: 'offline', resumeState: state };
  if (event.type === 'registered') return lifecycle;
  return { state: nextOnlineState(state, record, event), resumeState: null };
}

/** A node's lifecycle and record together: what the node actor holds. */
export interface NodeStanding {
  lifecycle: NodeLifecycle;
  record: NodeRecord;
}

/** The state that counts: an offline node's is the one it returns to. */
export function effectiveState(lifecycle: NodeLifecycle): NodeState {
  return lifecycle.state === 'offline' ? (lifecycle.resumeState ?? 'probation') : lifecycle.state;
}

/**
 * One event applied to a node: the record is updated, then the lifecycle. Leaving suspension
 * clears the strikes and the run of failures that led to it (the recent window and the
 * in-a-row counters), so a reinstated node starts over instead of being suspended again by its
 * next single failed request or verdict; its lifetime counts (and so its reputation) remain.
 * Entering suspension stamps `suspendedAt`, which the operator's cool-down is counted from.
 *
 * @example
 * let node: NodeStanding = { lifecycle: newNodeLifecycle(), record: newNodeRecord(now) };
 * node = applyNodeEvent(node, { type: 'request', ok: true, latencyMs: 120, tokensPerSecond: 40, at: now });
 */
export function applyNodeEvent(node: NodeStanding, event: NodeEvent): NodeStanding {
  if (node.lifecycle.state === 'retired') return node;
  let record = recordEvent(node.record, event);
  const lifecycle = nextState(node.lifecycle, record, event);
  if (effectiveState(node.lifecycle) !== 'suspended' && effectiveState(lifecycle) === 'suspended') {
    // The latest time seen rather than the event's own: a late signal must not date it back.
    record = { ...record, suspendedAt: record.lastActivityAt };
  }
  if (effectiveState(node.lifecycle) === 'suspended' && effectiveState(lifecycle) === 'probation') {
    record = { ...record, strikes: 0, consecutiveVerificationFailures: 0, recent: [], cleanStreak: 0, servedSinceVerificationFailure: 0 };
  }
  return { lifecycle, record };
}

/** x / (1 + x): 0.5 at parity with the peers, toward 1 when better, toward 0 when worse. */
function relative(x: number): number {
  return x / (1 + x);
}

/**
 * A node's reputation, 0..1, the weighted sum of five components, each 0..1 and each 0.5
 * when nothing is known, so a node with no record (or `undefined`) scores exactly 0.5:
 *
 * - verification (0.5): `(passes + 1) / (passes + 2 + VERIFICATION_FAILURE_WEIGHT * failures)`,
 *   a smoothed pass rate of spot checks in which a failure counts 4 times. Weighted highest: it
 *   is the only evidence that the answers are real.
 * - success (0.2): `(served + 1) / (served + failures + 2)`, the smoothed success rate.
 * - uptime (0.1): `(live + 1) / (checks + 2)`, the smoothed share of liveness samples (taken
 *   while the node is registered) that found its heartbeat in the bucket.
 * - performance (0.1): against the peer medians, when given and measured: latency
 *   `r / (1 + r)` with `r = peerLatency / latency`, throughput `t / (1 + t)` with
 *   `t = tokensPerSecond / peerTokensPerSecond`, averaged (0.5 = median, 2x better ≈ 0.67).
 *   Without peers or measurements, 0.5.
 * - longevity (0.1): `0.5 + 0.5 * span / (span + LONGEVITY_HALF_MS)`, span = last activity -
 *   first seen: a node's history is worth more the longer it is. It never drops below 0.5,
 *   so being new is neutral, not a penalty.
 *
 * Reputation ignores the lifecycle state: routing must honour the state (see
 * {@link routableStates}) on its own.
 *
 * @example
 * reputation(undefined); // 0.5
 * reputation(record, { latencyMs: 250, tokensPerSecond: 30 });
 */
export function reputation(record: NodeRecord | undefined, peers?: PeerMedians): number {
  if (!record) return 0.5;
  const parts = reputationParts(record, peers);
  const w = REPUTATION_WEIGHTS;
  const score = w.verification * parts.verification + w.success * parts.success + w.uptime * parts.uptime + w.performance * parts.performance + w.longevity * parts.longevity;
  return Math.min(1, Math.max(0, score));
}

/** Each component of {@link reputation}, in [0, 1], before its weight. */
export type ReputationParts = Record<keyof typeof REPUTATION_WEIGHTS, number>;

/** The components {@link reputation} weighs (see there for each one's formula). */
export function reputationParts(record: NodeRecord, peers?: PeerMedians): ReputationParts {
  const verification = (record.verificationPasses + 1) / (record.verificationPasses + 2 + VERIFICATION_FAILURE_WEIGHT * record.verificationFailures);
  const success = (record.requestsServed + 1) / (record.requestsServed + record.failures + 2);

  const perf: number[] = [];
  if (peers && peers.latencyMs > 0 && record.latencyEmaMs !== null) {
    // A 0 ms average would divide by zero: treat it as 1 ms, i.e. very fast.
    perf.push(relative(peers.latencyMs / Math.max(record.latencyEmaMs, 1)));
  }
  if (peers && peers.tokensPerSecond > 0 && record.tokensPerSecondEma !== null) {
    perf.push(relative(record.tokensPerSecondEma / peers.tokensPerSecond));
  }
  const performance = perf.length ? perf.reduce((a, b) => a + b, 0) / perf.length : 0.5;

  const span = Math.max(0, record.lastActivityAt - record.firstSeenAt);
  const longevity = 0.5 + (0.5 * span) / (span + LONGEVITY_HALF_MS);

  const uptime = ((record.uptimeLive ?? 0) + 1) / ((record.uptimeChecks ?? 0) + 2);
  return { verification, success, uptime, performance, longevity };
}
