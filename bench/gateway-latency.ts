/**
 * Issue 12's benchmark, one run on one Temporal server:
 *
 * - Temporal's floor: a trivial workflow that runs one activity on another task queue (start →
 *   activity p50, whole workflow p50, and workflows/s at 32 clients);
 * - the bare engine (node-llama-cpp, same model and thread count as the node): first token and
 *   whole answer;
 * - GitBlock (gateway + Temporal + NATS + a real `gitblock-node`): streamed time to first token
 *   and whole answers (streamed and not) at 1, 8 and 32 clients, with the issue's ratios: added
 *   first token ÷ the floor's start-to-activity; added whole answer ÷ the floor's whole workflow;
 * - a peer: the LiteLLM proxy in front of a plain OpenAI-compatible server on the same engine and
 *   model (bench/plain-server.ts), same requests; skipped, with why, when either is missing.
 *
 *   npm run bench:gateway -- [--requests 30] [--tokens 8] [--max-parallel 8]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { loadConfig } from '../config/env.ts';
import { connectMongo } from '../connections/mongo.ts';
import { connectNats } from '../connections/nats.ts';
import { connectTemporalClient } from '../connections/temporal.ts';
import { startEdgeFromConfig } from '../edge/server.ts';
import { startGateway } from '../gateway/server.ts';
import { generateFixtureModel } from '../models/fixture/tiny-llama.ts';
import { ModelEngine } from '../workers/node/engine.ts';
import { detectCompute } from '../workers/node/gpu.ts';
import { startControlWorker } from '../workers/control.ts';
import { taskQueues, workflowIds } from '../temporal.config.ts';
import { intFlag, median, table, withStack } from './harness.ts';
import { startPlainServer } from './plain-server.ts';
import { store } from '../store/index.ts';
import { phaseMedians, traceOf, type Phase, type Sent } from './request-trace.ts';

Runtime.install({ logger: new DefaultLogger('WARN') });
const requestsPerLevel = intFlag('requests', 30);
const tokens = intFlag('tokens', 8);
const maxParallel = intFlag('max-parallel', 8);
const levels = [1, 8, 32];
/** --trace: break the first token down by phase from each 1-client request's workflow history. */
const trace = process.argv.includes('--trace');
/**
 * --ab: also a second gateway as before (no eager start, each workflow routes itself with a local
 * activity), and at 1 client streamed requests alternate between the two: a paired
 * before/after in one run.
 */
const ab = process.argv.includes('--ab');
/** --no-peer: skip the LiteLLM row (its install and start are slow). */
const withPeer = !process.argv.includes('--no-peer');
const messages = [{ role: 'user' as const, content: 'Say something short.' }];

/** One timed call: its first token (streams only) and its end, ms after it began. */
interface Timing {
  firstMs?: number | undefined;
  wholeMs: number;
  /** For --trace: the request's id and wall-clock send and first-token times. */
  sent?: Sent | undefined;
}

interface Level {
  timings: Timing[];
  clients: number;
  failed: number;
  ttft: number;
  whole: number;
  perSecond: number;
}

/** Runs `one` requestsPerLevel times from `clients` concurrent callers. */
async function atLevel(clients: number, one: () => Promise<Timing>): Promise<Level> {
  const timings: Timing[] = [];
  let next = 0;
  let failed = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      // A failed request is counted, not fatal: on a loaded machine a heartbeat can time out.
      while (next++ < requestsPerLevel) await one().then((t) => timings.push(t), () => failed++);
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const firsts = timings.flatMap((t) => (t.firstMs === undefined ? [] : [t.firstMs]));
  return { timings, clients, failed, ttft: firsts.length ? median(firsts) : NaN, whole: median(timings.map((t) => t.wholeMs)), perSecond: timings.length / seconds };
}

/** An OpenAI-compatible chat completion against `url`, streamed or not. */
function openAiCall(url: string, model: string, stream: boolean, key = 'bench'): () => Promise<Timing> {
  return async () => {
    const t = performance.now();
    const sentAt = Date.now();
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ model, messages, max_tokens: tokens, temperature: 0, stream }),
    });
    if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);
    if (!stream) {
      await response.json();
      return { wholeMs: performance.now() - t };
    }
    let firstMs: number | undefined;
    let firstAt = 0;
    let buffered = '';
    const decoder = new TextDecoder();
    for await (const bytes of response.body!) {
      buffered += decoder.decode(bytes as Uint8Array, { stream: true });
      // The first chunk that carries answer text, not the role-only opening chunk.
      if (firstMs === undefined && /"(content|text)":"[^"]/.test(buffered)) {
        firstMs = performance.now() - t;
        firstAt = Date.now();
      }
    }
    const requestId = response.headers.get('x-gitblock-request-id');
    return { firstMs, wholeMs: performance.now() - t, ...(requestId ? { sent: { requestId, sentAt, firstAt } } : {}) };
  };
}

/** Each path at each level, streamed (first token, whole) and not (whole). */
async function measurePath(call: (stream: boolean) => () => Promise<Timing>, cpu?: CpuMeter): Promise<(Level & { wholePlain: number; perSecondPlain: number })[]> {
  for (let i = 0; i < 5; i++) await call(true)(); // warm-up
  const out = [];
  for (const clients of levels) {
    const streamed = await atLevel(clients, call(true));
    const before = clients === 32 ? cpu?.read() : undefined;
    const plain = await atLevel(clients, call(false));
    if (before) cpu!.report(before, plain.timings.length);
    out.push({ ...streamed, failed: streamed.failed + plain.failed, wholePlain: plain.whole, perSecondPlain: plain.perSecond });
  }
  return out;
}

// 1. Bare: our engine on the same model and thread count the node uses.
const base = loadConfig();
const fixture = await generateFixtureModel(join(base.GITBLOCK_MODEL_DIR, 'gitblock-tiny.gguf'));
const compute = await detectCompute('cpu');
const engine = await ModelEngine.load(compute.llama, { modelId: 'gitblock-tiny', modelPath: fixture.path, contextSize: 1024, sequences: 1, threads: 1 });
const prompt = engine.renderChat(messages);
const bareOne = async (): Promise<Timing> => {
  const t = performance.now();
  let firstMs: number | undefined;
  await engine.generate({ promptTokens: prompt, sampling: { temperature: 0, maxTokens: tokens }, onToken: () => (firstMs ??= performance.now() - t) });
  return { firstMs, wholeMs: performance.now() - t };
};
for (let i = 0; i < 5; i++) await bareOne();
const bare = await atLevel(1, bareOne);
await engine[Symbol.asyncDispose]();

type Row = Record<string, string | number>;

/**
 * CPU time per process over the 32-client non-streamed level: which one saturates. The bench's
 * own process holds the gateway, the control worker and the edge (as `npm start` does).
 */
class CpuMeter {
  constructor(private readonly pids: Record<string, number | undefined>) {}

  read(): Record<string, number> {
    const out: Record<string, number> = { 'gateway+control+edge (this process)': process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6 };
    for (const [name, pid] of Object.entries(this.pids)) {
      if (pid === undefined) continue;
      try {
        // utime and stime, fields 14 and 15, in clock ticks (100 per second on Linux).
        const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        out[name] = (Number(fields[11]) + Number(fields[12])) / 100;
      } catch {
        // gone
      }
    }
    return out;
  }

  report(before: Record<string, number>, requests: number): void {
    const after = this.read();
    const per = Object.entries(after).map(([name, s]) => `${name} ${(((s - (before[name] ?? 0)) * 1000) / Math.max(1, requests)).toFixed(1)}`);
    notes.push(`CPU ms per request at 32 clients, not streamed (${requests} requests): ${per.join(', ')}`);
  }
}
const rows: Row[] = [];
const notes: string[] = [];
const traced: Row[] = [];

/** The p50 of each phase of the traced calls (see request-trace.ts), and how many were traced. */
async function tracePhases(client: Client, timings: Timing[], workflowId: (requestId: string) => string): Promise<Record<Phase | 'traced', number>> {
  const sent = timings.flatMap((t) => (t.sent ? [t.sent] : []));
  const traces = (await Promise.all(sent.map((s) => traceOf(client, workflowId(s.requestId), s)))).filter((t) => t !== undefined);
  return { ...phaseMedians(traces), traced: traces.length };
}

await withStack(async (stack) => {
  const e = stack.endpoints;
  const config = loadConfig({ TEMPORAL_ADDRESS: e.temporalAddress, NATS_URL: e.natsUrl, CHAIN_RPC_URL: e.rpcUrl, MONGODB_URI: e.mongodbUri, GATEWAY_PORT: '0', EDGE_PORT: '0' });
  const mongo = await connectMongo(e.mongodbUri, config.MONGODB_DB);
  const nc = await connectNats(e.natsUrl, 'bench');
  const control = await startControlWorker({ temporal: { address: e.temporalAddress, namespace: e.temporalNamespace }, db: mongo.db, nc });

  // 2. Temporal's floor, on this server: the request workflow's shape with nothing else in it.
  const floorQueue = 'bench-floor';
  const floorConnection = await NativeConnection.connect({ address: e.temporalAddress });
  const floorWorker = await Worker.create({ connection: floorConnection, namespace: e.temporalNamespace, taskQueue: floorQueue, activities: { floorTouch: async () => Date.now() } });
  const floorRunning = floorWorker.run();
  const client = await connectTemporalClient({ address: e.temporalAddress, namespace: e.temporalNamespace });
  let floorSeq = 0;
  const floorToActivity: number[] = [];
  const floorOne = async (): Promise<Timing> => {
    const startedAt = Date.now();
    const t = performance.now();
    const requestId = `bench-floor-${++floorSeq}`;
    const reachedAt = (await client.workflow.execute('floorWorkflow', { taskQueue: taskQueues.control, workflowId: requestId, args: [floorQueue] })) as number;
    floorToActivity.push(reachedAt - startedAt);
    return { wholeMs: performance.now() - t, sent: { requestId, sentAt: startedAt, firstAt: reachedAt } };
  };
  for (let i = 0; i < 5; i++) await floorOne();
  floorToActivity.length = 0;
  const floor1 = await atLevel(1, floorOne);
  const floorStart = median(floorToActivity);
  const floor32 = await atLevel(32, floorOne);
  if (trace) traced.push({ path: 'Temporal floor', ttft: floorStart, 'stream p50': floor1.whole, ...(await tracePhases(client, floor1.timings, (id) => id)) });
  rows.push({ path: 'Temporal floor (1 activity, other queue)', clients: 1, 'ttft p50': floorStart, 'stream p50': '-', 'whole p50': floor1.whole, 'req/s': floor1.perSecond, 'ttft ratio': '-', 'whole ratio': '-', failed: 0 });
  rows.push({ path: 'Temporal floor', clients: 32, 'ttft p50': '-', 'stream p50': '-', 'whole p50': floor32.whole, 'req/s': floor32.perSecond, 'ttft ratio': '-', 'whole ratio': '-', failed: 0 });
  rows.push({ path: 'bare node-llama-cpp', clients: 1, 'ttft p50': bare.ttft, 'stream p50': '-', 'whole p50': bare.whole, 'req/s': bare.perSecond, 'ttft ratio': '-', 'whole ratio': '-', failed: 0 });
  floorWorker.shutdown();
  await floorRunning;
  await floorConnection.close();

  // 3. GitBlock.
  // In this process with the control worker, as `npm start` runs them: workflows start eagerly.
  const gateway = await startGateway({ config, mongodbUri: e.mongodbUri, port: 0, controlConnection: control.connection });
  const { key } = (await (await fetch(`${gateway.url}/v1/keys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).json()) as { key: string };
  // A generous key: the benchmark measures the network, not the free tier's limits.
  await store(mongo.db).apiKeys.updateOne({}, { $set: { 'policy.requestsPerMinute': 1_000_000, 'policy.tokensPerDay': 1_000_000_000 } });
  const edge = await startEdgeFromConfig(config, { mongodbUri: e.mongodbUri });
  const node = await startBenchNode(edge.address);
  const addRows = (path: string, levelsOut: Awaited<ReturnType<typeof measurePath>>, bareTtft: number, bareWhole: number) => {
    for (const l of levelsOut) {
      rows.push({
        path,
        clients: l.clients,
        'ttft p50': l.ttft,
        'stream p50': l.whole,
        'whole p50': l.wholePlain,
        'req/s': l.perSecondPlain,
        'ttft ratio': (l.ttft - bareTtft) / floorStart,
        'whole ratio': (l.wholePlain - bareWhole) / floor1.whole,
        failed: l.failed,
      });
    }
  };
  if (ab) {
    // As before: no eager start, and each workflow routes itself with the control worker's `route`.
    const plainStart = await startGateway({ config, mongodbUri: e.mongodbUri, port: 0, routeAtGateway: false });
    const pair = { 'eager start, routed at the gateway': [] as Timing[], 'ordinary start, routed in the workflow': [] as Timing[] };
    for (let i = 0; i < 3; i++) await openAiCall(plainStart.url, 'gitblock-tiny', true, key)();
    for (let i = 0; i < requestsPerLevel; i++) {
      pair['eager start, routed at the gateway'].push(await openAiCall(gateway.url, 'gitblock-tiny', true, key)());
      pair['ordinary start, routed in the workflow'].push(await openAiCall(plainStart.url, 'gitblock-tiny', true, key)());
    }
    for (const [name, timings] of Object.entries(pair)) {
      const ttft = median(timings.flatMap((t) => (t.firstMs === undefined ? [] : [t.firstMs])));
      traced.push({ path: `A/B ${name}`, ttft, 'stream p50': median(timings.map((t) => t.wholeMs)), ...(await tracePhases(client, timings, (id) => workflowIds.request(id))) });
    }
    await plainStart.close();
  }
  const cpu = new CpuMeter({ node: node.pid, temporal: stack.process('temporal')?.child.pid, mongodb: stack.process('mongodb')?.child.pid, nats: stack.process('nats')?.child.pid });
  const gitblock = await measurePath((stream) => openAiCall(gateway.url, 'gitblock-tiny', stream, key), cpu);
  addRows('GitBlock', gitblock, bare.ttft, bare.whole);
  if (trace) traced.push({ path: 'GitBlock streamed', ttft: gitblock[0]!.ttft, 'stream p50': gitblock[0]!.whole, ...(await tracePhases(client, gitblock[0]!.timings, (id) => workflowIds.request(id))) });
  const at32 = gitblock.at(-1)!;
  notes.push(`GitBlock at 32 clients: ${at32.perSecondPlain.toFixed(2)} req/s = ${(at32.perSecondPlain / floor32.perSecond).toFixed(2)} × the floor's ${floor32.perSecond.toFixed(1)} workflows/s (goal ≥ 0.5)`);
  node.kill('SIGTERM');
  await new Promise((r) => node.once('exit', r));
  await edge.stop();
  await gateway.close();
  await control.shutdown();
  await client.connection.close();
  await nc.close();
  await mongo[Symbol.asyncDispose]();
});

// 4. The peer: LiteLLM's proxy in front of a plain OpenAI-compatible server, same engine and model.
const peer = withPeer ? await measurePeer(fixture.path) : 'not asked for (--no-peer)';
if (typeof peer === 'string') notes.push(`LiteLLM proxy: skipped (${peer})`);
else {
  for (const l of peer) {
    rows.push({ path: 'LiteLLM proxy → plain server', clients: l.clients, 'ttft p50': l.ttft, 'stream p50': l.whole, 'whole p50': l.wholePlain, 'req/s': l.perSecondPlain, 'ttft ratio': '-', 'whole ratio': '-', failed: 0 });
  }
}

console.log(`\n${tokens}-token chat completions, fixture model, 1 CPU thread, node --max-parallel ${maxParallel}, ${requestsPerLevel} requests per level, ms`);
console.log('ttft ratio = (GitBlock ttft − bare ttft) ÷ floor start→activity; whole ratio = (GitBlock whole − bare whole) ÷ floor whole workflow (goals ≤ 1.5 at 1 client)\n');
console.log(table(rows));
if (traced.length) {
  console.log(`\nWhere the first token's time goes at 1 client, p50 ms per phase (bench/request-trace.ts; for the floor "node+relay" is its activity's start):\n`);
  console.log(table(traced));
}
for (const n of notes) console.log(`\n${n}`);
process.exit(0);

async function startBenchNode(edge: string): Promise<ChildProcess> {
  const home = mkdtempSync(join(tmpdir(), 'bench-node-'));
  const args = ['start', '--models', 'gitblock-tiny', '--gpu', 'cpu', '--threads', '1', '--edge', edge];
  args.push('--max-parallel', String(maxParallel), '--context-size', '1024', '--node-id', 'bench-node', '--key-file', join(home, 'k'));
  const node = spawn(process.execPath, [fileURLToPath(new URL('../bin/gitblock-node.mjs', import.meta.url)), ...args], { env: { ...process.env, GITBLOCK_NODE_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => (out += d.toString()) && /serving .* through the edge/.test(out) && resolve();
    node.stdout.on('data', onData);
    node.stderr.on('data', onData);
    node.once('exit', (c) => reject(new Error(`node exited ${c}: ${out}`)));
  });
  await new Promise((r) => setTimeout(r, 6000)); // the gateway's views of registrations (5 s) and heartbeats catch up
  return node;
}

/** The LiteLLM row, or why it was skipped. */
async function measurePeer(modelPath: string): Promise<Awaited<ReturnType<typeof measurePath>> | string> {
  const litellm = join(homedir(), '.cache', 'gitblock', 'litellm-venv', 'bin', 'litellm');
  if (!existsSync(litellm)) return `no ${litellm}: python3 -m venv ~/.cache/gitblock/litellm-venv && ~/.cache/gitblock/litellm-venv/bin/pip install 'litellm[proxy]'`;
  // The node's settings: one CPU thread, its slots, its context.
  const plain = await startPlainServer({ modelPath, slots: maxParallel, contextSize: 1024, threads: 1, gpu: 'cpu' });
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  // Offline and quiet: its model cost map from the package, not fetched from GitHub; no
  // telemetry. Recent releases refuse to start without a master key: it is the bench's key.
  const masterKey = 'sk-gitblock-bench';
  const proxy = spawn(litellm, ['--model', 'openai/gitblock-tiny', '--api_base', plain.url, '--port', String(port), '--num_workers', '1', '--telemetry', 'False'], {
    env: { ...process.env, OPENAI_API_KEY: 'bench', LITELLM_MASTER_KEY: masterKey, LITELLM_LOCAL_MODEL_COST_MAP: 'True', LITELLM_LOG: 'ERROR' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (d: Buffer) => void (output = (output + d.toString()).slice(-4000));
  proxy.stdout.on('data', keep);
  proxy.stderr.on('data', keep);
  let exited: number | null | undefined;
  proxy.once('exit', (code) => (exited = code));
  try {
    const url = `http://127.0.0.1:${port}`;
    const began = performance.now();
    // Most of its start is importing the package (about 30 s at a load average of 11 here).
    const deadline = Date.now() + 300_000;
    for (;;) {
      if (exited !== undefined) return `the LiteLLM proxy exited (${String(exited)}): ${output.split('\n').filter((l) => l.trim()).slice(-3).join(' / ')}`;
      if (Date.now() > deadline) return 'the LiteLLM proxy did not come up within 300 s';
      if (await fetch(`${url}/health/liveliness`).then((r) => r.ok, () => false)) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    notes.push(`LiteLLM proxy up in ${((performance.now() - began) / 1000).toFixed(1)} s`);
    return await measurePath((stream) => openAiCall(url, 'openai/gitblock-tiny', stream, masterKey));
  } finally {
    proxy.kill('SIGTERM');
    await plain.close();
  }
}
