/**
 * Issue 4's benchmark: the latency of a short completion straight from node-llama-cpp, and
 * the same through gateway + Temporal + NATS at 1, 8 and 32 concurrent clients, with the
 * added latency (p50, p99) and sustained requests per second. One run, one machine, the
 * fixture model; the node is a real `gitblock-node` process.
 *
 *   npx tsx bench/gateway-latency.ts [--requests 64] [--tokens 16] [--max-parallel 8]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { loadConfig } from '../config/env.ts';
import { connectMongo } from '../connections/mongo.ts';
import { connectNats } from '../connections/nats.ts';
import { startGateway } from '../gateway/server.ts';
import { generateFixtureModel } from '../models/fixture/tiny-llama.ts';
import { ModelEngine } from '../workers/node/engine.ts';
import { detectCompute } from '../workers/node/gpu.ts';
import { startControlWorker } from '../workers/control.ts';
import { intFlag, median, percentile, table, withStack } from './harness.ts';

Runtime.install({ logger: new DefaultLogger('WARN') });
const requestsPerLevel = intFlag('requests', 64);
const tokens = intFlag('tokens', 16);
const maxParallel = intFlag('max-parallel', 8);
const levels = [1, 8, 32];
const messages = [{ role: 'user' as const, content: 'Say something short.' }];

const base = loadConfig();
const fixture = await generateFixtureModel(join(base.GITBLOCK_MODEL_DIR, 'gitblock-tiny.gguf'));

// 1. Bare: our engine on the same model and thread count the node uses.
const compute = await detectCompute('cpu');
const engine = await ModelEngine.load(compute.llama, { modelId: 'gitblock-tiny', modelPath: fixture.path, contextSize: 1024, sequences: 1, threads: 1 });
const prompt = engine.renderChat(messages);
const bareMs: number[] = [];
for (let i = 0; i < 5; i++) await engine.generate({ promptTokens: prompt, sampling: { temperature: 0, maxTokens: tokens } });
for (let i = 0; i < requestsPerLevel; i++) {
  const t = performance.now();
  await engine.generate({ promptTokens: prompt, sampling: { temperature: 0, maxTokens: tokens } });
  bareMs.push(performance.now() - t);
}
await engine[Symbol.asyncDispose]();
const bareP50 = median(bareMs);
const bareP99 = percentile(bareMs, 99);

const rows: Record<string, string | number>[] = [{ path: 'bare node-llama-cpp', clients: 1, 'p50 ms': bareP50, 'p99 ms': bareP99, 'added p50 ms': '-', 'added p99 ms': '-', 'req/s': 1000 / median(bareMs) }];

await withStack(async (stack) => {
  const e = stack.endpoints;
  const config = loadConfig({ TEMPORAL_ADDRESS: e.temporalAddress, NATS_URL: e.natsUrl, CHAIN_RPC_URL: e.rpcUrl, MONGODB_URI: e.mongodbUri, GATEWAY_PORT: '0' });
  const mongo = await connectMongo(e.mongodbUri, config.MONGODB_DB);
  const nc = await connectNats(e.natsUrl, 'bench');
  const control = await startControlWorker({ temporal: { address: e.temporalAddress, namespace: e.temporalNamespace }, db: mongo.db, nc });
  const gateway = await startGateway({ config, mongodbUri: e.mongodbUri, port: 0 });
  const { key } = (await (await fetch(`${gateway.url}/v1/keys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).json()) as { key: string };
  // A generous key: the benchmark measures the network, not the free tier's limits.
  await mongo.db.collection('api_keys').updateOne({}, { $set: { 'policy.requestsPerMinute': 1_000_000, 'policy.tokensPerDay': 1_000_000_000 } });

  const home = mkdtempSync(join(tmpdir(), 'bench-node-'));
  const node = spawn(process.execPath, [fileURLToPath(new URL('../bin/gitblock-node.mjs', import.meta.url)), 'start', '--models', 'gitblock-tiny', '--gpu', 'cpu', '--threads', '1', '--gateway', gateway.url, '--temporal', e.temporalAddress, '--nats', e.natsUrl, '--max-parallel', String(maxParallel), '--context-size', '1024', '--node-id', 'bench-node', '--key-file', join(home, 'k')], { env: { ...process.env, GITBLOCK_NODE_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    node.stdout.on('data', (d: Buffer) => (out += d.toString()) && /serving .* on Temporal/.test(out) && resolve());
    node.once('exit', (c) => reject(new Error(`node exited ${c}: ${out}`)));
  });
  await new Promise((r) => setTimeout(r, 1000)); // the gateway's heartbeat view catches up

  const one = async () => {
    const t = performance.now();
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: 'gitblock-tiny', messages, max_tokens: tokens, temperature: 0 }),
    });
    if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);
    await response.json();
    return performance.now() - t;
  };
  for (let i = 0; i < 5; i++) await one(); // warm-up
  for (const clients of levels) {
    const latencies: number[] = [];
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (next++ < requestsPerLevel) latencies.push(await one());
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    rows.push({
      path: 'gateway + Temporal + NATS',
      clients,
      'p50 ms': median(latencies),
      'p99 ms': percentile(latencies, 99),
      'added p50 ms': median(latencies) - bareP50,
      'added p99 ms': percentile(latencies, 99) - bareP99,
      'req/s': latencies.length / seconds,
    });
  }
  node.kill('SIGTERM');
  await new Promise((r) => node.once('exit', r));
  await gateway.close();
  await control.shutdown();
  await nc.close();
  await mongo[Symbol.asyncDispose]();
});

console.log(`\n${tokens}-token chat completions, fixture model, 1 CPU thread, node --max-parallel ${maxParallel}, ${requestsPerLevel} requests per level\n`);
console.log(table(rows));
process.exit(0);
