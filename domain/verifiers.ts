/**
 * Who may verify another node's answer. A failed spot check voids the claimant's reward and,
 * repeated, suspends it; two verifiers of two operators decide a disagreement. Letting any
 * routable node verify would let anyone void honest nodes' rewards, or settle a tie-break, by
 * registering fresh operators. So verdicts come only from *established* nodes:
 *
 * - `active` (out of probation, not degraded, suspended, offline or retired), and
 * - never caught lying themselves (no failed spot check of their own answers, ever), and
 * - with at least {@link MIN_VERIFIER_PASSES} passed spot checks of their own answers, unless
 *   their operator is a configured seed verifier (see {@link VerifierPolicy.seedOperators}).
 *
 * The other conditions on a verifier, another operator than the claimant (and than the first
 * verifier, for the tie-break) and the same model file as the claimant, are hard filters of the
 * router (`rankCandidates`' `excludeOperators` and `expectedModelHash`). The route activity
 * applies this rule when it routes a spot check (`activities/routing.ts`).
 *
 * Pure: the spot-check workflow's activity and the tests share it.
 */
import type { NodeRecord, NodeState } from './reputation.ts';

/**
 * Passed spot checks of its own answers a node needs before its verdicts count. The right to
 * void someone else's reward is earned by being checked first, and each check was a chance to
 * be caught. At the sampling rates (`domain/sampling.ts`: 0.5 on probation, 0.25 decaying once
 * active), a node reaches 20 after about 100 served requests: far costlier for an attacker than
 * registering a key, while an honest node of a busy network gets there within days.
 */
export const MIN_VERIFIER_PASSES = 20;

/** What the rule reads about a candidate: the node actor's projection in MongoDB `nodes`. */
export interface VerifierStanding {
  operator: string;
  /** Undefined when the node actor has not projected the node yet: a brand-new node. */
  state: NodeState | undefined;
  /** Undefined (or fields missing) for a node with no record yet: counted as zero. */
  record: Partial<Pick<NodeRecord, 'verificationPasses' | 'verificationFailures'>> | undefined;
}

export interface VerifierPolicy {
  /**
   * Operators (lowercase 0x addresses) whose active nodes verify without a record of passed
   * checks. Passes can only come from verifiers, so a new network where everyone must first be
   * checked would never check anyone: it needs a root of trust, and the least surprising one is
   * the operators whoever runs the network chooses to vouch for (its own machines, known
   * partners), named in configuration where the team can read and change it. The vouching
   * covers only who runs the node, not how it behaves: a seed operator's node must still be
   * active and never have failed a check, so one that lies stops verifying like any other.
   * As independent nodes earn their record the list can shrink to nothing.
   */
  seedOperators: ReadonlySet<string>;
  /** Passed checks a node of any other operator needs; {@link MIN_VERIFIER_PASSES} by default. */
  minPasses: number;
}

/**
 * The policy for a list of seed operator addresses (any case).
 *
 * @example
 * const policy = verifierPolicy(config.GITBLOCK_SEED_VERIFIERS);
 */
export function verifierPolicy(seedOperators: Iterable<string> = [], minPasses = MIN_VERIFIER_PASSES): VerifierPolicy {
  return { seedOperators: new Set([...seedOperators].map((o) => o.toLowerCase())), minPasses };
}

/**
 * Why the node may not verify another node's answer, or null when it may. Comparisons are
 * written as "not good" so a NaN in a broken record refuses rather than admits.
 *
 * @example
 * verifierIneligibility({ operator, state: 'probation', record }, policy); // 'node is probation, not active'
 */
export function verifierIneligibility(node: VerifierStanding, policy: VerifierPolicy): string | null {
  if (node.state !== 'active') return `node is ${node.state ?? 'new'}, not active`;
  const failures = node.record?.verificationFailures ?? 0;
  if (!(failures <= 0)) return `failed ${failures} spot check(s) of its own`;
  if (policy.seedOperators.has(node.operator.toLowerCase())) return null;
  const passes = node.record?.verificationPasses ?? 0;
  if (!(passes >= policy.minPasses)) return `passed ${passes} of the ${policy.minPasses} spot checks a verifier needs`;
  return null;
}
