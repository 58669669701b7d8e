/**
 * Issue 14's benchmark: time to first byte of each status page with 1,000 nodes seeded into a
 * fresh database (registrations, projections with records, 24 hours of history each, live
 * heartbeats refreshed as real nodes would), plus request records and ledger accruals, against
 * the real gateway on a private stack. Each page must answer in under 200 ms.
 *
 *   npm run bench:status [-- --nodes 1000 --requests 10000 --samples 50]
 */
import { request } from 'node:http';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { Db } from 'mongodb';
import { getAddress, type Address } from 'viem';
import { nodeHistoryBucketMs } from '../activities/node-projection.ts';
import { loadConfig } from '../config/env.ts';
import { connectMongo } from '../connections/mongo.ts';
import { connectNats } from '../connections/nats.ts';
import { nodesKv } from '../connections/streams.ts';
import type { Heartbeat } from '../domain/heartbeat.ts';
import { newNodeRecord, reputation } from '../domain/reputation.ts';
import { startGateway } from '../gateway/server.ts';
import { intFlag, percentile, table, withStack } from './harness.ts';

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
    return { _id: id, operator: operatorOf(i), models: ['gitblock-tiny'], state: i % 50 === 0 ? 'suspended' : 'active', resumeState: null, reputation: reputation(record), record, version: 1, updatedAt: new Date(now) };
  });
  await insertInBatches(db, 'nodes', nodes);
  const history = nodeIds.flatMap((id, i) =>
    Array.from({ length: 24 }, (_, h) => {
      const at = now - (now % nodeHistoryBucketMs) - h * 3_600_000;
      return { _id: `${id}:${at}`, nodeId: id, at: new Date(at), reputation: 0.6 + ((i + h) % 30) / 100, tokensPerSecond: 20 + ((i + h) % 80), latencyMs: 250, requestsServed: 100 + i - h };
    }),
  );
  await insertInBatches(db, 'node_history', history);
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
  console.log(`seeded ${nodeCount} nodes (${operatorCount} operators, 24 history points each), ${requestCount} requests and accruals in ${((Date.now() - seedStarted) / 1000).toFixed(1)} s`);

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
      const p95 = percentile(times, 95);
      if (p95 >= budgetMs) over++;
      rows.push({ page: path.replace(/0x[0-9a-fA-F]{40}/, '0x…').replace(/bench-node-\w+/, '<id>'), 'p50 ms': percentile(times, 50), 'p95 ms': p95, 'max ms': Math.max(...times), [`< ${budgetMs} ms`]: p95 < budgetMs ? 'yes' : 'NO' });
    }
    console.log(`time to first byte, ${samples} sequential requests per page after one warm-up, ${nodeCount} nodes live:`);
    console.log(table(rows));
    process.exitCode = over ? 1 : 0;
  } finally {
    clearInterval(beating);
    await gateway.close();
    await nc.close();
    await mongo[Symbol.asyncDispose]();
  }
});
