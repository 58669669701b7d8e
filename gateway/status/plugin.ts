/**
 * The network's status pages, served by the gateway: public, read-only, server-rendered (readable
 * without JavaScript), refreshed live by a small script, with uPlot charts served from here (no
 * CDN). Every page reads the same functions as the JSON API (node-views.ts, rewards-view.ts,
 * network.ts): one source, not a second computation. No prompt or answer is ever read.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { getAddress, isAddress } from 'viem';
import { readNodeHistory } from '../../activities/node-projection.ts';
import { defaultEpochSchedule, epochAt, type EpochSchedule } from '../../domain/emission.ts';
import { nodeIdSchema } from '../../domain/heartbeat.ts';
import { reputationParts, REPUTATION_WEIGHTS } from '../../domain/reputation.ts';
import type { GatewayDeps } from '../deps.ts';
import { findNode, listPublicNodes, nodeListLimit, renderedListing } from '../node-views.ts';
import type { RewardsViews } from '../rewards-view.ts';
import { RefreshedByKey } from '../refreshed.ts';
import { html, page, type Html } from './html.ts';
import { createNetworkStatus } from './network.ts';
import { emissionPage } from './pages/emission.ts';
import { networkPage } from './pages/network.ts';
import { nodePage, nodesPage, type VerdictRow } from './pages/nodes.ts';
import { operatorPage } from './pages/operator.ts';
import { ensureIndexes, type NodeDocument } from '../../store/index.ts';

export interface StatusPagesOptions {
  deps: GatewayDeps;
  /** Shared with `GET /v1/rewards/<operator>`: the operator's page shows its latest computation. */
  rewards: RewardsViews;
  /** The settlement schedule the epoch countdown follows; the default genesis and week otherwise. */
  schedule?: EpochSchedule | undefined;
}

const here = dirname(fileURLToPath(import.meta.url));
const uplotDir = dirname(createRequire(import.meta.url).resolve('uplot/dist/uPlot.iife.min.js'));
const assets: Record<string, { path: string; type: string }> = {
  'uPlot.iife.min.js': { path: join(uplotDir, 'uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  'uPlot.min.css': { path: join(uplotDir, 'uPlot.min.css'), type: 'text/css; charset=utf-8' },
  'status.js': { path: join(here, 'assets/status.js'), type: 'text/javascript; charset=utf-8' },
  'status.css': { path: join(here, 'assets/status.css'), type: 'text/css; charset=utf-8' },
};

/** Scripts and styles only from here; uPlot sizes its canvas with inline styles. */
const csp = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const historyWindowMs = 48 * 60 * 60_000;
const historyRefreshMs = 30_000;

export async function statusPages(app: FastifyInstance, options: StatusPagesOptions): Promise<void> {
  const { deps } = options;
  const schedule = options.schedule ?? defaultEpochSchedule;
  const now = deps.now ?? Date.now;
  // Not awaited: the index only makes the series' reads cheaper (on MongoDB; FerretDB scans
  // anyway), and a gateway must start (and answer 503s) while MongoDB is away.
  void ensureIndexes(deps.db, ['requests', 'registrations']).catch((err: unknown) => app.log.warn({ err }, 'status pages: indexes not made now'));
  const network = createNetworkStatus(deps, schedule);
  // A node's points change at most once per 5-minute bucket: re-read in the background every 30 s.
  const histories = new RefreshedByKey((nodeId: string) => readNodeHistory(deps.db, nodeId, now() - historyWindowMs - historyRefreshMs, now()), historyRefreshMs, 5_000, now);
  const files = new Map(Object.entries(assets).map(([name, a]) => [name, { body: readFileSync(a.path), type: a.type }]));

  const send = (reply: FastifyReply, title: string, path: string, body: Html, status = 200) =>
    reply.status(status).header('content-type', 'text/html; charset=utf-8').header('content-security-policy', csp).header('cache-control', 'no-store').send(page({ title, path, body }));
  const problem = (reply: FastifyReply, path: string, status: 400 | 404, message: string) => send(reply, status === 404 ? 'Not found' : 'Bad request', path, html`<h1>${status === 404 ? 'Not found' : 'Bad request'}</h1><p>${message}</p>`, status);

  app.get('/v1/status', { schema: { tags: ['status'], description: 'The network at a glance: what the status page at / shows' } }, async () => network.get());

  app.get('/', { schema: { hide: true } }, async (_request, reply) => send(reply, 'Network', '/', networkPage(await network.get())));

  app.get('/nodes', { schema: { hide: true } }, async (request, reply) => {
    const { model } = (request.query ?? {}) as { model?: unknown };
    if (model !== undefined && (typeof model !== 'string' || !/^[\w.-]{1,64}$/.test(model))) return problem(reply, '/nodes', 400, 'model must be a model id such as gitblock-tiny');
    const body = renderedListing(deps, model ? { model } : {}, 'html', (nodes) => page({ title: 'Nodes', path: '/nodes', body: nodesPage(nodes, model, nodeListLimit) }));
    return reply.header('content-type', 'text/html; charset=utf-8').header('content-security-policy', csp).header('cache-control', 'no-store').send(body);
  });

  app.get('/nodes/:nodeId', { schema: { hide: true } }, async (request, reply) => {
    const { nodeId } = request.params as { nodeId: string };
    const path = `/nodes/${nodeId}`;
    if (!nodeIdSchema.safeParse(nodeId).success) return problem(reply, path, 400, 'A node id is 3-63 lowercase letters, digits and dashes.');
    const toMs = now();
    const fromMs = toMs - historyWindowMs;
    // The standing and its verdicts from memory; the history too, once read (three reads by _id).
    const found = await findNode(deps, nodeId);
    if (!found) return problem(reply, path, 404, `No node ${nodeId} has registered with this network.`);
    const history = (await histories.get(nodeId)).filter((p) => p.at.getTime() >= fromMs);
    const { doc, view } = found;
    const checks: VerdictRow[] = (doc.checks ?? []).map((c) => ({ at: c.at, status: c.passed ? 'passed' : 'failed' })).reverse();
    return send(reply, `Node ${nodeId}`, path, nodePage(view, doc.record ? partsOf(doc) : undefined, history, checks, { fromMs, toMs }));
  });

  app.get('/operators/:address', { schema: { hide: true } }, async (request, reply) => {
    const { address } = request.params as { address: string };
    if (!isAddress(address)) return problem(reply, '/operators', 400, 'An operator is an address: 0x and 40 hex digits (mixed case must be a valid checksum).');
    const operator = getAddress(address);
    const rewards = await options.rewards.recent(operator);
    const nodes = listPublicNodes(deps, { operator });
    return send(reply, `Operator ${operator}`, `/operators/${operator}`, operatorPage(rewards, nodes, `${request.protocol}://${request.host}`));
  });

  app.get('/emission', { schema: { hide: true } }, async (_request, reply) => send(reply, 'Emission', '/emission', emissionPage(epochAt(now(), schedule))));

  app.get('/status/assets/:file', { schema: { hide: true } }, async (request, reply) => {
    const file = files.get((request.params as { file: string }).file);
    if (!file) return problem(reply, '/status/assets', 404, 'No such asset.');
    return reply.header('content-type', file.type).header('cache-control', 'public, max-age=300').send(file.body);
  });

}

/**
 * The parts of the stored reputation. The peers' medians it was scored against are not stored,
 * so performance is read back from the stored score (exact unless the score was clamped).
 */
function partsOf(doc: Pick<NodeDocument, 'record' | 'reputation'>) {
  const parts = reputationParts(doc.record);
  const w = REPUTATION_WEIGHTS;
  const others = w.verification * parts.verification + w.success * parts.success + w.uptime * parts.uptime + w.longevity * parts.longevity;
  return { ...parts, performance: Math.min(1, Math.max(0, (doc.reputation - others) / w.performance)) };
}
