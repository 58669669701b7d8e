/**
 * The network at a glance: what `/` shows and `GET /v1/status` answers, computed once here for
 * both. Node totals are counted from the gateway's in-memory projection (NodeStandings); the
 * epoch's accruals and what was settled are re-read in the background at
 * most every few seconds (stale-while-revalidate), so a page view costs no scan.
 */
import type { Db } from 'mongodb';

import { EMISSION_EPOCHS, epochAt, epochEmission, epochWindow, type EpochSchedule } from '../../domain/emission.ts';
import type { NodeState } from '../../domain/reputation.ts';
import { listModels } from '../../models/catalog.ts';
import type { GatewayDeps } from '../deps.ts';
import { modelObject } from '../routes/models.ts';
import { servingNodes } from '../serving-nodes.ts';
import { Refreshed } from '../refreshed.ts';
import { RequestSeriesView, type RequestSeries } from './series.ts';
import { type NodeDocument, store } from '../../store/index.ts';

interface NodeTotals {
  total: number;
  byState: Partial<Record<NodeState, number>>;
  checksRun: number;
  checksFailed: number;
}

/** Counted from the gateway's in-memory projection (NodeStandings): no read of its own. */
function nodeTotals(documents: readonly NodeDocument[]): NodeTotals {
  const totals: NodeTotals = { total: 0, byState: {}, checksRun: 0, checksFailed: 0 };
  for (const doc of documents) {
    totals.total++;
    totals.byState[doc.state] = (totals.byState[doc.state] ?? 0) + 1;
    const passes = doc.record?.verificationPasses ?? 0;
    const failures = doc.record?.verificationFailures ?? 0;
    totals.checksRun += passes + failures;
    totals.checksFailed += failures;
  }
  return totals;
}

/** GBT base units accrued (not voided) since `since`; the ledger's `createdAt` index bounds the read. */
async function readAccruedSince(db: Db, since: Date): Promise<{ amount: bigint; requests: number }> {
  let amount = 0n;
  let requests = 0;
  for await (const e of store(db).ledger.find({ createdAt: { $gte: since }, status: 'accrued' }, { projection: { amount: 1 } })) {
    amount += BigInt(e.amount);
    requests++;
  }
  return { amount, requests };
}

async function readSettledTotal(db: Db): Promise<bigint> {
  let total = 0n;
  for await (const e of store(db).epochs.find({ status: 'settled' }, { projection: { paid: 1 } })) total += BigInt(e.paid ?? '0');
  return total;
}

export type NetworkStatusDeps = Pick<GatewayDeps, 'db' | 'liveNodes' | 'standings'> & { now?: () => number };

/** The network's status; one per gateway, shared by every page view and JSON call. */
export function createNetworkStatus(deps: NetworkStatusDeps, schedule: EpochSchedule) {
  const now = deps.now ?? Date.now;
  const seriesView = new RequestSeriesView(deps.db, now);
  // A page view waits only for the very first read of the window, never for a top-up.
  const series = new Refreshed(() => seriesView.series(), 3_000, now);
  const settled = new Refreshed(() => readSettledTotal(deps.db), 15_000, now);
  const accruedByEpoch = new Map<number, Refreshed<{ amount: bigint; requests: number }>>();
  const accruedIn = (epoch: number, startMs: number) => {
    let view = accruedByEpoch.get(epoch);
    if (!view) {
      accruedByEpoch.clear();
      view = new Refreshed(() => readAccruedSince(deps.db, new Date(startMs)), 5_000, now);
      accruedByEpoch.set(epoch, view);
    }
    return view.get();
  };

  return {
    series: () => series.get(),
    async get() {
      const at = now();
      const epoch = epochAt(at, schedule);
      const window = epoch >= 0 ? epochWindow(epoch, schedule) : { startMs: schedule.genesis * 1000, endMs: schedule.genesis * 1000 };
      const [settledTotal, accrued, requestSeries] = await Promise.all([
        settled.get(),
        epoch >= 0 ? accruedIn(epoch, window.startMs) : Promise.resolve({ amount: 0n, requests: 0 }),
        series.get(),
      ]);
      const totals = nodeTotals(deps.standings.documents());
      const serving = servingNodes(deps);
      const live = deps.liveNodes.list();
      return {
        object: 'network_status' as const,
        at,
        nodes: {
          live: live.length,
          serving: serving.length,
          registered: totals.total,
          suspended: totals.byState.suspended ?? 0,
          by_state: totals.byState,
        },
        operators: { live: new Set(live.map((n) => n.heartbeat.operator.toLowerCase())).size },
        models: listModels().map((m) => modelObject(deps, m)),
        checks: { run: totals.checksRun, failed: totals.checksFailed },
        epoch: {
          number: epoch,
          of: EMISSION_EPOCHS,
          starts_at: window.startMs,
          /** Settlement of the epoch starts when it ends. */
          ends_at: window.endMs,
          emission: (epoch >= 0 ? epochEmission(epoch) : 0n).toString(),
          accrued: accrued.amount.toString(),
          accrued_requests: accrued.requests,
        },
        settled_total: settledTotal.toString(),
        series: requestSeries,
      };
    },
  };
}

export type NetworkStatus = Awaited<ReturnType<ReturnType<typeof createNetworkStatus>['get']>>;
export type { RequestSeries };
