/**
 * A key's token reservation is settled from its request's outcome, exactly once, even when the
 * gateway that reserved it died before settling (killed mid-stream: the request completes and
 * is paid, but nobody is left to give back the unused part). The gateway settles as it answers;
 * the reconciler here settles what is left, from the request workflow's own end.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Db } from 'mongodb';
import { workflowIds } from '../temporal.config.ts';
import type { RequestAnswer } from '../workflows/request.ts';
import type { ApiKeys, RequestReservation } from './keys/keys.ts';
import { store, type RequestStatus } from '../store/index.ts';

/** How the request ended, as far as the settler knows. */
export type RequestEnd =
  | { kind: 'completed'; outcome: RequestAnswer }
  /** Cancelled by its client: charged its prompt and what it was sent (unknown: nothing). */
  | { kind: 'cancelled'; relayedTokens?: number }
  /** Failed, timed out, or never started: it costs nothing. */
  | { kind: 'failed' };

/**
 * What a request is charged: a completed one its usage; a failed one nothing; a cancelled one
 * its prompt and what it was sent, at most the reservation (or cancelling just before the end
 * would be a way around the quota). The gateway and the reconciler both charge by this.
 */
export function chargeFor(reservation: Pick<RequestReservation, 'reserved' | 'promptTokens'>, end: RequestEnd): number {
  switch (end.kind) {
    case 'completed':
      return end.outcome.result.usage.totalTokens;
    case 'cancelled':
      return Math.min(reservation.reserved, reservation.promptTokens + (end.relayedTokens ?? 0));
    case 'failed':
      return 0;
  }
}

export interface ReconcileDeps {
  keys: ApiKeys;
  temporal: Client;
  db: Db;
  now?: () => number;
}

export interface ReconcileOptions {
  /**
   * How long after its workflow closed a reservation is left to its own gateway, which settles
   * as it answers (with what it alone knows: how much of a cancelled stream was sent).
   */
  graceMs?: number;
  /** A reservation whose workflow never started (the gateway died, or a dependency failed, in between) after this long is settled at no charge. */
  notStartedMs?: number;
}

export const reconcileDefaults = { graceMs: 30_000, notStartedMs: 120_000, everyMs: 60_000 } as const;

const finalStatuses: RequestStatus[] = ['completed', 'failed', 'cancelled'];

/**
 * Settles every reservation whose request has ended and whose gateway did not settle it.
 * Idempotent and safe to run in every gateway process at once: settling claims the
 * reservation first (ApiKeys.settleReservation). Returns how many it settled.
 *
 * @example
 * const { settled } = await reconcileReservations({ keys, temporal, db });
 */
export async function reconcileReservations(deps: ReconcileDeps, options: ReconcileOptions = {}): Promise<{ settled: number }> {
  const now = (deps.now ?? Date.now)();
  const graceMs = options.graceMs ?? reconcileDefaults.graceMs;
  const notStartedMs = options.notStartedMs ?? reconcileDefaults.notStartedMs;
  const requests = store(deps.db).requests;
  let settled = 0;
  for (const reservation of await deps.keys.unsettledReservations(new Date(now - graceMs))) {
    const end = await requestEnd(deps.temporal, reservation, now, graceMs, notStartedMs);
    if (!end) continue;
    if (await deps.keys.settleReservation(reservation, chargeFor(reservation, end))) settled++;
    if (end.kind !== 'completed') {
      // A request nobody was left to record (its workflow timed out, or never started) ends as failed.
      await requests.updateOne({ _id: reservation.requestId, status: { $nin: finalStatuses } }, { $set: { status: end.kind === 'cancelled' ? 'cancelled' : 'failed', updatedAt: new Date(now) } });
    }
  }
  return { settled };
}

/** How the request ended, or undefined while it may still be running or be settled by its gateway. */
async function requestEnd(temporal: Client, reservation: RequestReservation, now: number, graceMs: number, notStartedMs: number): Promise<RequestEnd | undefined> {
  const handle = temporal.workflow.getHandle(workflowIds.request(reservation.requestId));
  let described;
  try {
    described = await handle.describe();
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    return now - reservation.at.getTime() >= notStartedMs ? { kind: 'failed' } : undefined;
  }
  if (described.status.name === 'RUNNING') return undefined;
  if (described.closeTime && now - described.closeTime.getTime() < graceMs) return undefined;
  switch (described.status.name) {
    case 'COMPLETED':
      return { kind: 'completed', outcome: (await handle.result()) as RequestAnswer };
    case 'CANCELLED':
      return { kind: 'cancelled' };
    default:
      return { kind: 'failed' };
  }
}

/**
 * Runs the reconciler every `everyMs` until stopped; a failed round (a dependency away) is
 * simply tried again next time.
 */
export function startReconciler(deps: ReconcileDeps, options: ReconcileOptions & { everyMs?: number; log?: (err: unknown) => void } = {}): { stop(): void } {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    // A timer tick cannot await; `running` keeps ticks from overlapping and the catch logs.
    void reconcileReservations(deps, options)
      .catch((err: unknown) => options.log?.(err))
      .finally(() => (running = false));
  }, options.everyMs ?? reconcileDefaults.everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
