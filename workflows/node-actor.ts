/**
 * The node actor: one long-running workflow per registered GPU node (id `node-<nodeId>`, see
 * `workflowIds.node`). It owns the node's lifecycle and reputation: request workflows signal
 * outcomes, spot checks signal verdicts, the gateway signals (de)registration and operator
 * actions. The state is projected into MongoDB (`nodes`) for the router, at a bounded rate.
 *
 * Signal handlers fold each signal into the state synchronously (the domain rules are pure
 * and cheap), so everything delivered is already in the state whenever the main loop runs:
 * nothing is buffered that continue-as-new could lose.
 */
import {
  ActivityFailure,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  isCancellation,
  log,
  proxyActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { NodeCheck, NodeProjectionActivities, NodeSnapshot } from '../activities/node-projection.ts';
import type { RoutingActivities } from '../activities/routing.ts';
import type { OperatorAction } from '../domain/operator-action.ts';
import {
  applyNodeEvent,
  newNodeLifecycle,
  newNodeRecord,
  reputation,
  type NodeEvent,
  type NodeRecord,
  type NodeStanding,
  type NodeState,
  type OnlineState,
  type PeerMedians,
} from '../domain/reputation.ts';
import { controlRetry, nodeActorTimeouts, timeouts } from '../temporal.config.ts';

/** Signals received per run before continue-as-new, so the history stays small. */
export const MAX_SIGNALS_BEFORE_CONTINUE = 500;
/** Request ids remembered per kind of signal, to drop a signal re-sent by a retry. */
export const RECENT_IDS_KEPT = 1000;
/** Spot-check verdicts kept for the node's public page (the latest ones). */
export const RECENT_CHECKS_KEPT = 10;

/** A request the node served (or failed) ended. */
export interface RequestOutcomeSignal {
  requestId: string;
  ok: boolean;
  /** Time to first token, ms. */
  latencyMs?: number | undefined;
  tokensPerSecond?: number | undefined;
  /** When the outcome was decided, ms since epoch. */
  at: number;
}

/** A spot check of one of the node's answers concluded. */
export interface VerificationVerdictSignal {
  requestId: string;
  passed: boolean;
  at: number;
}

export interface RegisteredSignal {
  models: string[];
  at: number;
}

export interface DeregisteredSignal {
  at: number;
  reason: string;
}

/**
 * The node operator's decision, sent only by the gateway once it has checked the operator's
 * signature and that the network allows it now (gateway/operator-actions.ts).
 */
export interface OperatorActionSignal {
  action: OperatorAction;
  at: number;
}

/** Idempotent on `requestId`: a re-sent outcome is counted once. */
export const requestOutcomeSignal = defineSignal<[RequestOutcomeSignal]>('requestOutcome');
/** Idempotent on `requestId`: a re-sent verdict is counted once. */
export const verificationVerdictSignal = defineSignal<[VerificationVerdictSignal]>('verificationVerdict');
/** The node registered again: back from offline, to the state it left. */
export const registeredSignal = defineSignal<[RegisteredSignal]>('registered');
/** The node deregistered or shut down: offline until it registers again. */
export const deregisteredSignal = defineSignal<[DeregisteredSignal]>('deregistered');
/** `reinstate` lifts a suspension (to probation); `retire` ends the actor after a last projection. */
export const operatorActionSignal = defineSignal<[OperatorActionSignal]>('operatorAction');

/** What the actor reports about its node. */
export interface NodeActorView {
  nodeId: string;
  operator: string;
  models: string[];
  state: NodeState;
  /** While offline: the state the node returns to on registering again. */
  resumeState: OnlineState | null;
  offlineReason: string | null;
  record: NodeRecord;
  /** Without peer medians (the actor does not know its peers): see `reputation`. */
  reputation: number;
  /** The version of the latest snapshot sent to MongoDB. */
  version: number;
  /** The latest spot-check verdicts, oldest first (at most RECENT_CHECKS_KEPT). */
  checks: NodeCheck[];
}

/** The current state, record and reputation. */
export const stateQuery = defineQuery<NodeActorView>('state');

/** Everything carried from one run to the next by continue-as-new. Plain JSON. */
export interface NodeActorState {
  standing: NodeStanding;
  models: string[];
  offlineReason: string | null;
  version: number;
  /** Recently counted request ids, oldest first. */
  seenOutcomes: string[];
  seenVerdicts: string[];
  /** Absent from runs carried over from before they were kept. */
  checks?: NodeCheck[] | undefined;
}

export interface NodeActorInput {
  nodeId: string;
  /** The operator's address, that rewards go to. */
  operator: string;
  models: string[];
  /** Carried over by continue-as-new; absent on the first run. */
  state?: NodeActorState | undefined;
  /** Overrides MAX_SIGNALS_BEFORE_CONTINUE (tests force continue-as-new with a low one). */
  maxSignalsBeforeContinue?: number | undefined;
  /** Overrides nodeActorTimeouts.livenessIntervalMs (tests sample faster). */
  livenessIntervalMs?: number | undefined;
}

const { projectNodeState, peerMedians } = proxyActivities<NodeProjectionActivities>({
  startToCloseTimeout: timeouts.controlStartToClose,
  // The projection is idempotent (versioned), so retrying is safe.
  retry: controlRetry,
});

/** One attempt: a missed sample is simply not counted, the next one comes soon. */
const { nodeLive } = proxyActivities<Pick<RoutingActivities, 'nodeLive'>>({
  startToCloseTimeout: timeouts.controlStartToClose,
  retry: { maximumAttempts: 1 },
});

/** A bounded, insertion-ordered set of ids: the oldest are forgotten first. */
class RecentIds {
  readonly #order: string[];
  readonly #set: Set<string>;

  constructor(ids: readonly string[]) {
    this.#order = ids.slice(-RECENT_IDS_KEPT);
    this.#set = new Set(this.#order);
  }

  /** Adds the id; false when it was already there. */
  add(id: string): boolean {
    if (this.#set.has(id)) return false;
    this.#set.add(id);
    this.#order.push(id);
    while (this.#order.length > RECENT_IDS_KEPT) this.#set.delete(this.#order.shift()!);
    return true;
  }

  toArray(): string[] {
    return [...this.#order];
  }
}

/**
 * The actor's state and what changes it: signal handlers, the liveness sampler, the projection.
 * Everything here runs inside the workflow (deterministic: Date.now() is the workflow clock).
 */
class NodeActor {
  node: NodeStanding;
  models: string[];
  offlineReason: string | null;
  version: number;
  readonly seenOutcomes: RecentIds;
  readonly seenVerdicts: RecentIds;
  checks: NodeCheck[];
  readonly maxSignals: number;
  /** Medians of the nodes serving the same models, for the performance term of the reputation. */
  peers: PeerMedians | undefined;
  peersAt = -Infinity;
  signalsThisRun = 0;
  // Project at the start of every run: the first creates the document, a continued run
  // publishes whatever the previous one had batched but not yet written.
  dirty = true;
  urgent = true;

  constructor(readonly input: NodeActorInput) {
    const carried = input.state;
    // Date.now() in a workflow is the deterministic workflow clock (the activation's time).
    this.node = carried?.standing ?? { lifecycle: newNodeLifecycle(), record: newNodeRecord(Date.now()) };
    this.models = carried?.models ?? [...input.models];
    this.offlineReason = carried?.offlineReason ?? null;
    this.version = carried?.version ?? 0;
    this.seenOutcomes = new RecentIds(carried?.seenOutcomes ?? []);
    this.seenVerdicts = new RecentIds(carried?.seenVerdicts ?? []);
    this.checks = (carried?.checks ?? []).slice(-RECENT_CHECKS_KEPT);
    this.maxSignals = Math.max(1, input.maxSignalsBeforeContinue ?? MAX_SIGNALS_BEFORE_CONTINUE);
  }

  retired(): boolean {
    return this.node.lifecycle.state === 'retired';
  }

  continueDue(): boolean {
    return this.signalsThisRun >= this.maxSignals || workflowInfo().continueAsNewSuggested;
  }

  apply(event: NodeEvent): void {
    const before = this.node.lifecycle.state;
    this.node = applyNodeEvent(this.node, event);
    this.dirty = true;
    // A lifecycle change (a suspension above all) skips the batching delay.
    if (this.node.lifecycle.state !== before) this.urgent = true;
  }

  view(): NodeActorView {
    return {
      nodeId: this.input.nodeId,
      operator: this.input.operator,
      models: this.models,
      state: this.node.lifecycle.state,
      resumeState: this.node.lifecycle.resumeState,
      offlineReason: this.offlineReason,
      record: this.node.record,
      reputation: reputation(this.node.record, this.peers),
      version: this.version,
      checks: this.checks,
    };
  }

  /** Without a request id a signal cannot be deduplicated, so it is not counted at all. */
  keyed(s: { requestId?: unknown }, kind: string): s is { requestId: string } {
    if (typeof s.requestId === 'string' && s.requestId.length > 0) return true;
    log.warn(`${kind} signal without a request id ignored`, { nodeId: this.input.nodeId });
    return false;
  }

  /** Each signal folded into the state synchronously; the state query. */
  setHandlers(): void {
    setHandler(requestOutcomeSignal, (s) => {
      this.signalsThisRun++;
      // A signal re-sent after a retry carries the same request id: count it once.
      if (!this.keyed(s, 'requestOutcome') || !this.seenOutcomes.add(s.requestId)) return;
      this.apply({ type: 'request', ok: s.ok, latencyMs: s.latencyMs, tokensPerSecond: s.tokensPerSecond, at: timeOf(s.at) });
    });
    setHandler(verificationVerdictSignal, (s) => {
      this.signalsThisRun++;
      if (!this.keyed(s, 'verificationVerdict') || !this.seenVerdicts.add(s.requestId)) return;
      const at = timeOf(s.at);
      this.checks = [...this.checks, { at, passed: s.passed === true }].slice(-RECENT_CHECKS_KEPT);
      this.apply({ type: 'verification', passed: s.passed, at });
    });
    setHandler(registeredSignal, (s) => {
      this.signalsThisRun++;
      if (this.retired()) return;
      if (Array.isArray(s.models) && s.models.length > 0) this.models = [...s.models];
      this.offlineReason = null;
      this.apply({ type: 'registered', at: timeOf(s.at) });
    });
    setHandler(deregisteredSignal, (s) => {
      this.signalsThisRun++;
      if (this.retired()) return;
      this.offlineReason = String(s.reason ?? 'deregistered');
      this.apply({ type: 'deregistered', at: timeOf(s.at) });
    });
    setHandler(operatorActionSignal, (s) => {
      this.signalsThisRun++;
      if (s.action !== 'reinstate' && s.action !== 'retire') {
        log.warn('unknown operator action ignored', { action: s.action });
        return;
      }
      this.apply({ type: s.action, at: timeOf(s.at) });
    });
    setHandler(stateQuery, () => this.view());
  }

  /**
   * Uptime from heartbeats: while the node is registered, sample now and then whether its
   * heartbeat is live in the bucket. Run in the background, so signals are never held up by it.
   */
  async sampleLiveness(): Promise<void> {
    const livenessEvery = Math.max(100, this.input.livenessIntervalMs ?? nodeActorTimeouts.livenessIntervalMs);
    try {
      for (;;) {
        await sleep(livenessEvery);
        if (this.retired()) return;
        if (this.node.lifecycle.state === 'offline') continue;
        let live: boolean;
        try {
          live = (await nodeLive({ nodeId: this.input.nodeId })) === true;
        } catch (err) {
          if (isCancellation(err)) return;
          continue;
        }
        this.apply({ type: 'liveness', live, at: Date.now() });
      }
    } catch (err) {
      // Cancelled with the workflow: nothing left to sample.
      if (!isCancellation(err)) throw err;
    }
  }

  /** What continue-as-new hands the next run. */
  carry(): NodeActorState {
    return {
      standing: this.node,
      models: this.models,
      offlineReason: this.offlineReason,
      version: this.version,
      seenOutcomes: this.seenOutcomes.toArray(),
      seenVerdicts: this.seenVerdicts.toArray(),
      checks: this.checks,
    };
  }

  /** Sends one snapshot; false when it could not be written (it is retried on the next round). */
  async project(): Promise<boolean> {
    // Strictly increasing, and no lower than the clock: a later actor for the same node id
    // (after a retirement) still supersedes this one's documents.
    this.version = Math.max(this.version + 1, Date.now());
    const v = this.view();
    const snapshot: NodeSnapshot = {
      nodeId: v.nodeId,
      operator: v.operator,
      models: v.models,
      state: v.state,
      resumeState: v.resumeState,
      reputation: v.reputation,
      record: v.record,
      version: this.version,
      updatedAt: Date.now(),
      checks: v.checks,
    };
    try {
      await projectNodeState(snapshot);
      // Peers change slowly and the query reads every node of the model: refresh now and then.
      // Until a peer exists (a new model, a one-node network) it looks again at each projection.
      if (Date.now() - this.peersAt >= nodeActorTimeouts.peerRefreshMs) {
        this.peers = (await peerMedians({ nodeId: this.input.nodeId, models: this.models })) ?? undefined;
        if (this.peers) this.peersAt = Date.now();
      }
      return true;
    } catch (err) {
      if (isCancellation(err)) throw err;
      // MongoDB being away must not end the actor: the state is here, the projection catches up.
      log.warn('node projection failed; retrying on the next round', {
        nodeId: this.input.nodeId,
        error: (err instanceof ActivityFailure && err.cause ? err.cause : (err as Error)).message,
      });
      return false;
    }
  }
}

/** A signal's own time, unless it is nonsense: then the workflow clock. */
const timeOf = (at: unknown) => (typeof at === 'number' && Number.isFinite(at) ? at : Date.now());

/**
 * One node's actor. Start it with id `workflowIds.node(nodeId)` (signal-with-start from the
 * gateway's registration is the natural way); it runs until an operator retires the node,
 * continuing as new every MAX_SIGNALS_BEFORE_CONTINUE signals or when Temporal suggests it.
 *
 * @example
 * await client.workflow.signalWithStart(nodeActorWorkflow, {
 *   workflowId: workflowIds.node(nodeId), taskQueue: taskQueues.control,
 *   args: [{ nodeId, operator, models }],
 *   signal: registeredSignal, signalArgs: [{ models, at: Date.now() }],
 * });
 */
export async function nodeActorWorkflow(input: NodeActorInput): Promise<NodeActorView> {
  const actor = new NodeActor(input);
  actor.setHandlers();
  void actor.sampleLiveness();

  for (;;) {
    await condition(() => actor.dirty || actor.continueDue());
    if (!actor.retired() && actor.continueDue()) {
      // Handlers fold signals into the state synchronously, so every signal delivered so far is
      // in it; one arriving now makes the server reject this completion and replay with it.
      // The next run projects at its start whatever this one had not yet written.
      await continueAsNew<typeof nodeActorWorkflow>({ ...input, state: actor.carry() });
    }
    actor.dirty = false;
    actor.urgent = false;
    if (!(await actor.project())) actor.dirty = true;
    // Done only once the retirement itself is in MongoDB: a retire that arrived while an
    // older snapshot was being written has set `dirty` again.
    if (actor.retired() && !actor.dirty) return actor.view();
    // The rate bound: at most one projection per interval, cut short by a lifecycle change
    // (so a suspension lands in MongoDB at once) or by a due continue-as-new.
    await condition(() => actor.urgent || (actor.continueDue() && !actor.retired()), nodeActorTimeouts.projectionInterval);
  }
}
