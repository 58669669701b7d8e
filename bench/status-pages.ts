/**
 * Issue 14's benchmark: time to first byte of each status page with 1,000 nodes seeded into a
 * fresh database (registrations, projections with records and verdicts, 48 hours of history each, live
 * heartbeats refreshed as real nodes would), plus request records and ledger accruals, against
 * the real gateway on a private stack. Each page must answer in under 200 ms.
 *
 *   npm run bench:status [-- --nodes 1000 --requests 10000 --samples 50]
 */
import { request } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { Db } from 'mongodb';
import { getAddress, type Address } from 'viem';

import { loadConfig } from '../config/env.ts';
import { connectMongo } from '../connections/mongo.ts';
import { connectNats } from '../connections/nats.ts';
import { nodesKv } from '../connections/streams.ts';
import type { Heartbeat } from '../domain/heartbeat.ts';
import { newNodeRecord, reputation } from '../domain/reputation.ts';
import { startGateway } from '../gateway/server.ts';
import { RECENT_CHECKS_KEPT } from '../workflows/node-actor.ts';
import { intFlag, percentile, table, withStack } from './harness.ts';
import { nodeHistoryBucketMs, nodeHistoryDayId, store } from '../store/index.ts';

Runtime.install({ logger: new DefaultLogger('WARN') });
const nodeCount = intFlag('nodes', 1_000);
const requestCount = intFlag('requests', 10_000);
const samples = intFlag('samples', 50);
const operatorCount = Math.max(1, Math.round(nodeCount / 10));
const budgetMs = 200;

const hex = (i: number, width: number) => i.toString(16).padStart(width, '0');
const operators: Address[] = Array.from({ length: operatorCount }, (_, i) => getAddress(`0x${hex(i + 1, 40)}`));
const nodeIds = Array.from({ length: nodeCount }, (_, i) => `bench-node-${hex(i, 4)}`);
const operatorOf = (i: number) => operators[i % operatorCount]!;
const modelHash = 'ab'.repeat(32);

async function insertInBatches(db: Db, name: string, docs: Record<string, unknown>[]): Promise<void> {
  for (let i = 0; i < docs.length; i += 1_000) await db.collection(name).insertMany(docs.slice(i, i + 1_000), { ordered: false });
}

async function seed(db: Db, now: number): Promise<void> {
  await insertInBatches(db, 'node_registrations', nodeIds.map((id, i) => ({ _id: id, operator: operatorOf(i), models: ['gitblock-tiny'], modelHashes: [modelHash], gpu: 'cuda: NVIDIA H100 80GB HBM3', version: '0.1.0', registeredAt: new Date(now) })));
  const nodes = nodeIds.map((id, i) => {
    const record = { ...newNodeRecord(now - 30 * 86_400_000), requestsServed: 100 + i, failures: i % 7, verificationPasses: 10 + (i % 13), verificationFailures: i % 50 === 0 ? 1 : 0, latencyEmaMs: 200 + (i % 300), tokensPerSecondEma: 20 + (i % 80), uptimeChecks: 1_000, uptimeLive: 950 + (i % 50), lastActivityAt: now };
    // The actor's latest verdicts, as it projects them (at most RECENT_CHECKS_KEPT).
    const checks = Array.from({ length: RECENT_CHECKS_KEPT }, (_, c) => ({ at: now - (RECENT_CHECKS_KEPT - c) * 600_000, passed: !(i % 50 === 0 && c === RECENT_CHECKS_KEPT - 1) }));
    return { _id: id, operator: operatorOf(i), models: ['gitblock-tiny'], state: i % 50 === 0 ? 'suspended' : 'active', resumeState: null, reputation: reputation(record), record, version: 1, updatedAt: new Date(now), checks };
  });
  await insertInBatches(db, 'nodes', nodes);
  // 48 hours of history, one point per hour, stored as the projection stores it: a document per node per day.
  const history = new Map<string, { _id: string; nodeId: string; day: Date; points: Record<string, unknown> }>();
  nodeIds.forEach((id, i) => {
    for (let h = 0; h < 48; h++) {
      const at = now - (now % nodeHistoryBucketMs) - h * 3_600_000;
      const _id = nodeHistoryDayId(id, at);
      const day = history.get(_id) ?? { _id, nodeId: id, day: new Date(at - (at % 86_400_000)), points: {} };
      day.points[`b${at}`] = { at: new Date(at), reputation: 0.6 + ((i + h) % 30) / 100, tokensPerSecond: 20 + ((i + h) % 80), latencyMs: 250, requestsServed: 100 + i - h };
      history.set(_id, day);
    }
  });
  await insertInBatches(db, 'node_history', [...history.values()]);
  // Completed requests over the last 6 hours, a tenth of them spot-checked; no prompt or answer stored here.
  const requests = Array.from({ length: requestCount }, (_, i) => {
    const createdAt = new Date(now - Math.floor((i / requestCount) * 6 * 3_600_000));
    return { _id: `bench-req-${i}`, status: 'completed', nodeId: nodeIds[i % nodeCount], createdAt, updatedAt: createdAt, usage: { completionTokens: 64 }, timings: { timeToFirstTokenMs: 180 + (i % 100), tokensPerSecond: 40, totalMs: 1_800 }, verification: i % 10 === 0 ? { status: 'passed' } : { status: 'not sampled' } };
  });
  await insertInBatches(db, 'requests', requests);
  const ledger = requests.map((r, i) => ({ _id: r._id, nodeId: r.nodeId, operator: operatorOf(i % nodeCount), modelId: 'gitblock-tiny', completionTokens: 64, amount: '12345678901234', status: 'accrued', createdAt: r.createdAt }));
  await insertInBatches(db, 'ledger', ledger);
}

function heartbeat(id: string, i: number): Heartbeat {
  return {
    nodeId: id,
    operator: operatorOf(i),
    version: '0.1.0',
    status: 'serving',
    gpu: { backend: 'cuda', devices: ['NVIDIA H100 80GB HBM3'], memoryBytes: 80 * 2 ** 30 },
    models: [{ id: 'gitblock-tiny', hash: modelHash, contextSize: 4096, slots: 4 }],
    maxParallel: 4,
    inFlight: 0,
    freeSlots: 4,
    recentTokensPerSecond: 40,
    freeMemoryBytes: 60 * 2 ** 30,
    at: Date.now(),
  };
}

/** Milliseconds from sending the request to the response's first byte (status line and headers). */
function ttfb(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request(url, (res) => {
      const ms = performance.now() - started;
      if (res.statusCode !== 200) reject(new Error(`${url}: HTTP ${res.statusCode}`));
      res.resume();
      res.on('end', () => resolve(ms));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * What each read the pages could make costs on this database, alone (no gateway running):
 * FerretDB 1.x over SQLite serves only a lone `_id` equality from an index and decodes every
 * document of the collection for any other filter, so the pages are built on `_id` reads and
 * in-memory views.
 */
async function profileQueries(db: Db): Promise<void> {
  const node = nodeIds[nodeCount >> 1]!;
  const operator = operators[0]!;
  const now = Date.now();
  const reads: [string, () => Promise<unknown>][] = [
    ['nodes: every document (the gateway view, every 2 s)', () => store(db).nodes.find({}).toArray()],
    ['node_registrations: every id and gpu (every 5 s)', () => store(db).registrations.find({}, { projection: { gpu: 1 } }).toArray()],
    ['nodes: one by _id', () => store(db).nodes.findOne({ _id: node })],
    ['node_history: 3 days by _id', () => Promise.all([0, 1, 2].map((d) => store(db).nodeHistory.findOne({ _id: nodeHistoryDayId(node, now - d * 86_400_000) })))],
    ['requests: by nodeId (old node page checks)', () => store(db).requests.find({ nodeId: node }).toArray()],
    ['requests: updatedAt >= now - 6 h, completed (series, first read)', () => store(db).requests.find({ updatedAt: { $gte: new Date(now - 6 * 3_600_000) }, status: 'completed' }, { projection: { createdAt: 1, updatedAt: 1, usage: 1, timings: 1 } }).toArray()],
    ['requests: updatedAt >= now (series, top-up)', () => store(db).requests.find({ updatedAt: { $gte: new Date(now) }, status: 'completed' }).toArray()],
    ['ledger: createdAt >= epoch start, accrued (epoch accrued)', () => store(db).ledger.find({ createdAt: { $gte: new Date(now - 7 * 86_400_000) }, status: 'accrued' }, { projection: { amount: 1 } }).toArray()],
    ['ledger: one operator, accrued (operator page)', () => store(db).ledger.find({ operator, status: 'accrued' }, { projection: { amount: 1 } }).toArray()],
  ];
  const rows = [];
  for (const [name, read] of reads) {
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      await read();
      times.push(performance.now() - started);
    }
    rows.push({ read: name, 'median ms': percentile(times, 50), 'max ms': Math.max(...times) });
  }
  console.log(`each read alone, 5 times (load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}):`);
  console.log(table(rows));
}

await withStack(async (stack) => {
  const e = stack.endpoints;
  const config = loadConfig({ TEMPORAL_ADDRESS: e.temporalAddress, NATS_URL: e.natsUrl, CHAIN_RPC_URL: e.rpcUrl, MONGODB_URI: e.mongodbUri, GATEWAY_PORT: '0' });
  const mongo = await connectMongo(e.mongodbUri, config.MONGODB_DB);
  const seedStarted = Date.now();
  await seed(mongo.db, Date.now());
  const nc = await connectNats(config, 'bench-status');
  const kv = await nodesKv(nc);
  const beat = () => Promise.all(nodeIds.map((id, i) => kv.put(id, JSON.stringify(heartbeat(id, i)))));
  await beat();
  const beating = setInterval(() => void beat().catch(() => {}), 3_000);
  console.log(`seeded ${nodeCount} nodes (${operatorCount} operators, 48 hourly history points each), ${requestCount} requests and accruals in ${((Date.now() - seedStarted) / 1000).toFixed(1)} s`);

  if (process.argv.includes('--profile')) await profileQueries(mongo.db);
  const gateway = await startGateway({ config, mongodbUri: e.mongodbUri, port: 0 });
  console.log(`gateway up at ${gateway.url}`);
  try {
    const pages = ['/', '/nodes', `/nodes/${nodeIds[nodeCount >> 1]}`, `/operators/${operators[0]}`, '/emission', '/v1/status', '/v1/nodes'];
    // One warm-up each: the first view reads the windows the later ones only top up.
    for (const path of pages) console.log(`warm-up ${path}: ${(await ttfb(`${gateway.url}${path}`)).toFixed(0)} ms`);
    const rows = [];
    let over = 0;
    for (const path of pages) {
      const times: number[] = [];
      for (let i = 0; i < samples; i++) times.push(await ttfb(`${gateway.url}${path}`));
      const p50 = percentile(times, 50);
      const p95 = percentile(times, 95);
      const pass = p50 < budgetMs && p95 < budgetMs;
      if (!pass) over++;
      rows.push({ page: path.replace(/0x[0-9a-fA-F]{40}/, '0x…').replace(/bench-node-\w+/, '<id>'), 'p50 ms': p50, 'p95 ms': p95, 'max ms': Math.max(...times), [`p50 and p95 < ${budgetMs} ms`]: pass ? 'PASS' : 'FAIL' });
    }
    console.log(`time to first byte, ${samples} sequential requests per page after one warm-up, ${nodeCount} nodes live; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}, ${cpus().length} CPUs:`);
    console.log(table(rows));
    console.log(over ? `FAIL: ${over} of ${pages.length} pages at or over ${budgetMs} ms` : `PASS: every page under ${budgetMs} ms at p50 and p95`);
    process.exitCode = over ? 1 : 0;
  } finally {
    clearInterval(beating);
    await gateway.close();
    await nc.close();
    await mongo[Symbol.asyncDispose]();
  }
});
