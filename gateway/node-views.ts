/**
 * Nodes as the public sees them: the node actor's projected standing, plus what its live
 * heartbeat says now. The one view `GET /v1/nodes` and the status pages both read, so the page
 * and the JSON never disagree.
 */
import type { Filter } from 'mongodb';
import { nodesCollection, type NodeDocument } from '../activities/node-projection.ts';
import type { LiveNode } from '../activities/live-nodes.ts';
import type { GatewayDeps } from './deps.ts';
import { registrationsCollection, type RegistrationDoc } from './registration/register.ts';

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

/** Every node (of one model, of one checksummed operator), best reputation first. */
export async function listPublicNodes(deps: Pick<GatewayDeps, 'liveNodes' | 'db'>, by: { model?: string; operator?: string } = {}): Promise<PublicNode[]> {
  const filter: Filter<NodeDocument> = { ...(by.model ? { models: by.model } : {}), ...(by.operator ? { operator: by.operator } : {}) };
  const docs = await deps.db.collection<NodeDocument>(nodesCollection).find(filter).sort({ reputation: -1 }).limit(nodeListLimit).toArray();
  // One pass over the live view, not one per node: a listing of 1,000 stays linear.
  const live = new Map(deps.liveNodes.list().map((n) => [n.heartbeat.nodeId, n]));
  const gpus = await registeredGpus(deps, docs.map((d) => d._id));
  return docs.map((doc) => publicNodeView(doc, live.get(doc._id), gpus.get(doc._id)));
}

/** One node's standing, or undefined when no node of that id has been projected. */
export async function findPublicNode(deps: Pick<GatewayDeps, 'liveNodes' | 'db'>, nodeId: string): Promise<PublicNode | undefined> {
  const doc = await deps.db.collection<NodeDocument>(nodesCollection).findOne({ _id: nodeId });
  return doc ? publicNodeView(doc, deps.liveNodes.get(nodeId), (await registeredGpus(deps, [nodeId])).get(nodeId)) : undefined;
}

/** The hardware each node said it runs on when it registered (the actor's document has none). */
async function registeredGpus(deps: Pick<GatewayDeps, 'db'>, ids: string[]): Promise<Map<string, string>> {
  const gpus = new Map<string, string>();
  const docs = deps.db.collection<RegistrationDoc>(registrationsCollection).find({ _id: { $in: ids } }, { projection: { _id: 1, gpu: 1 } });
  for await (const r of docs) gpus.set(r._id, r.gpu);
  return gpus;
}
