/**
 * Which nodes the gateway counts as able to serve now: live (a fresh heartbeat, registered: see
 * LiveNodes.restrictTo), serving (not draining), and in a state the router sends work to (not
 * suspended, offline or retired: NodeStandings.routable, the lifecycle's own rule). The one view
 * that `/v1/models`, admission and `/health` count, so none of them advertises a node the
 * router would skip.
 */
import type { LiveNode } from '../activities/live-nodes.ts';
import type { GatewayDeps } from './deps.ts';

/** The nodes able to take a request now, optionally only those serving `modelId`. */
export function servingNodes(deps: Pick<GatewayDeps, 'liveNodes' | 'standings'>, modelId?: string): LiveNode[] {
  return deps.liveNodes.list(modelId).filter((n) => n.heartbeat.status === 'serving' && deps.standings.routable(n.heartbeat.nodeId));
}
