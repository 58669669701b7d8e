/**
 * Every node's standing as its actor last projected it (`nodes`, see node-projection.ts), held
 * in memory and re-read every few seconds: for the checks that run on every poll or every
 * listing (the edge refusing a suspended node's polls, the gateway advertising capacity, the
 * public node listings and status pages), where a database read each time would cost more than
 * the few seconds of lag. The whole documents are kept: FerretDB reads every document in full
 * whatever the projection, so one read serves both the checks and the listings.
 *
 * The actor is the truth and projects a lifecycle change at once; this view trails it by at
 * most `refreshMs`. The edge closes that gap for work already handed out (see temporal-proxy.ts).
 */
import type { Db } from 'mongodb';
import { effectiveState, isRoutable, type NodeState } from '../domain/reputation.ts';

import { RefreshedView } from './refreshed-view.ts';
import { type NodeDocument, store } from '../store/index.ts';

/** How often the view re-reads the projection by default. */
export const nodeStandingsRefreshMs = 2_000;

export class NodeStandings extends RefreshedView {
  private standings = new Map<string, NodeDocument>();
  /** The same documents, best reputation first: what every listing shows. */
  private ranked: readonly NodeDocument[] = [];

  constructor(private readonly db: Db) {
    super();
  }

  override start(refreshMs = nodeStandingsRefreshMs): Promise<this> {
    return super.start(refreshMs);
  }

  protected async read(): Promise<void> {
    const docs = await store(this.db).nodes.find({}).toArray();
    this.standings = new Map(docs.map((doc) => [doc._id, doc]));
    this.ranked = docs.sort((a, b) => b.reputation - a.reputation || (a._id < b._id ? -1 : 1));
  }

  /** Every projected node, best reputation first, as of the last read. */
  documents(): readonly NodeDocument[] {
    return this.ranked;
  }

  /** One node's projected document as of the last read; undefined before its actor first projected. */
  document(nodeId: string): NodeDocument | undefined {
    return this.standings.get(nodeId);
  }

  /** The projected state; undefined before the node's actor first projected. */
  state(nodeId: string): NodeState | undefined {
    return this.standings.get(nodeId)?.state;
  }

  /**
   * Whether the node may be given work now, by the router's rule: a routable state, where a
   * node not yet projected counts as on probation (as the route activity reads it).
   */
  routable(nodeId: string): boolean {
    return isRoutable(this.standings.get(nodeId)?.state ?? 'probation');
  }

  /**
   * Why the node must get no work at all, or undefined: suspended or retired, counting the
   * state an offline node returns to (a suspended node that restarts is still suspended). An
   * offline node is not barred: one that polls is coming back, and its registration puts it
   * back in the state it left.
   */
  barred(nodeId: string): 'suspended' | 'retired' | undefined {
    const standing = this.standings.get(nodeId);
    if (!standing) return undefined;
    const state = effectiveState({ state: standing.state, resumeState: standing.resumeState ?? null });
    return state === 'suspended' || state === 'retired' ? state : undefined;
  }
}
