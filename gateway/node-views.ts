/**
 * Nodes as the public sees them: the node actor's projected standing, plus what its live
 * heartbeat says now. The one view `GET /v1/nodes` and the status pages both read, so the page
 * and the JSON never disagree.
 */

import type { LiveNode } from '../activities/live-nodes.ts';
import type { GatewayDeps } from './deps.ts';

import { type NodeDocument, store } from '../store/index.ts';

/** Most nodes one listing returns. */
export const nodeListLimit = 1_000;

const round4 = (x: number) => Math.round(x * 10_000) / 10_000;

/** A node's standing for the public. `hardware` is the node's own claim, shown as reported; null while it is not live. */
export function publicNodeView(doc: NodeDocument, live: LiveNode | undefined, registeredGpu: string | undefined) {
  const r = doc.record;
  const gpu = live?.heartbeat.gpu;
  return {
    id: doc._id,
    object: 'node' as const,
    operator: doc.operator,
    models: doc.models,
    /** What the node said it runs on when it registered. */
    gpu: registeredGpu ?? null,
    state: doc.state,
    reputation: round4(doc.reputation),
    live: live !== undefined,
    hardware: gpu ? { backend: gpu.backend, devices: gpu.devices, memory_bytes: gpu.memoryBytes ?? null, as_reported: true as const } : null,
    requests_served: r?.requestsServed ?? 0,
    failures: r?.failures ?? 0,
    verification_passes: r?.verificationPasses ?? 0,
    verification_failures: r?.verificationFailures ?? 0,
    uptime: r?.uptimeChecks ? round4((r.uptimeLive ?? 0) / r.uptimeChecks) : null,
    time_to_first_token_ms: r?.latencyEmaMs ?? null,
    tokens_per_second: r?.tokensPerSecondEma ?? null,
    updated_at: doc.updatedAt,
  };
}

export type PublicNode = ReturnType<typeof publicNodeView>;

type NodeViewDeps = Pick<GatewayDeps, 'liveNodes' | 'standings' | 'registered'>;

/**
 * Every node (of one model, of one checksummed operator), best reputation first. Read from the
 * gateway's in-memory views (the projection re-read every few seconds, the registrations, the
 * live heartbeats): a listing of 1,000 nodes costs no database read.
 */
export function listPublicNodes(deps: NodeViewDeps, by: NodeFilter = {}): PublicNode[] {
  const out: PublicNode[] = [];
  for (const doc of deps.standings.documents()) {
    if (out.length >= nodeListLimit) break;
    if (by.model && !doc.models.includes(by.model)) continue;
    if (by.operator && doc.operator !== by.operator) continue;
    out.push(publicNodeView(doc, deps.liveNodes.get(doc._id), deps.registered.gpu(doc._id)));
  }
  return out;
}

export interface NodeFilter {
  model?: string;
  operator?: string;
}

interface Listing {
  basis: readonly NodeDocument[];
  at: number;
  nodes: PublicNode[];
  /** Each rendering of this listing (the JSON, the page), made once. */
  bodies: Map<string, string>;
}

/** How long one listing (and its renderings) is served: the projection it is built from is re-read every 2 s. */
export const listingMaxAgeMs = 2_000;
const listings = new WeakMap<NodeViewDeps['standings'], Map<string, Listing>>();

/**
 * A listing and its rendering `format`, shared by `GET /v1/nodes` and the `/nodes` page: built
 * once per read of the projection (at most every {@link listingMaxAgeMs}) and rendered once per
 * format, however many views ask meanwhile. Rendering 1,000 rows costs tens of milliseconds of
 * the gateway's one thread; rendering them per view would make every view wait for the others.
 */
export function renderedListing(deps: NodeViewDeps & Pick<GatewayDeps, 'now'>, by: NodeFilter, format: string, render: (nodes: PublicNode[]) => string): string {
  const now = (deps.now ?? Date.now)();
  let byFilter = listings.get(deps.standings);
  if (!byFilter) listings.set(deps.standings, (byFilter = new Map<string, Listing>()));
  const key = `${by.model ?? ''}\u0000${by.operator ?? ''}`;
  let listing = byFilter.get(key);
  const basis = deps.standings.documents();
  if (!listing || listing.basis !== basis || now - listing.at >= listingMaxAgeMs) {
    // Few filters are asked for; a busy gateway keeps at most a few hundred (one per operator page).
    if (byFilter.size >= 500) byFilter.clear();
    listing = { basis, at: now, nodes: listPublicNodes(deps, by), bodies: new Map() };
    byFilter.set(key, listing);
  }
  let body = listing.bodies.get(format);
  if (body === undefined) listing.bodies.set(format, (body = render(listing.nodes)));
  return body;
}

/**
 * One node's standing, or undefined when no node of that id has been projected. From memory
 * like the listing (so a node's page and its row agree); a node projected since the last read
 * is read from the database by id.
 */
export async function findPublicNode(deps: NodeViewDeps & Pick<GatewayDeps, 'db'>, nodeId: string): Promise<PublicNode | undefined> {
  return (await findNode(deps, nodeId))?.view;
}

/** The node's projected document and its public view (the node's page shows parts of both). */
export async function findNode(deps: NodeViewDeps & Pick<GatewayDeps, 'db'>, nodeId: string): Promise<{ doc: NodeDocument; view: PublicNode } | undefined> {
  const doc = deps.standings.document(nodeId) ?? (await store(deps.db).nodes.findOne({ _id: nodeId })) ?? undefined;
  if (!doc) return undefined;
  const gpu = deps.registered.gpu(nodeId) ?? (await store(deps.db).registrations.findOne({ _id: nodeId }, { projection: { gpu: 1 } }))?.gpu;
  return { doc, view: publicNodeView(doc, deps.liveNodes.get(nodeId), gpu) };
}
