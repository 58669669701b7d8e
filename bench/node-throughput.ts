/**
 * Issue 3's benchmark: tokens per second on one machine, in one run, of
 *   1. a bare node-llama-cpp generation (our engine, no network),
 *   2. the same request through the `infer` activity (Temporal task, JetStream token stream),
 *   3. the aggregate with 1, 4 and 8 parallel sequences of one context, bare and through the activity.
 *
 *   npx tsx bench/node-throughput.ts [--model gitblock-tiny|smollm2-135m] [--tokens 256] [--repeats 5] [--threads N] [--gpu auto|cpu|cuda|vulkan]
 */
import { availableParallelism } from 'node:os';
import { Runtime, DefaultLogger, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../config/env.ts';
import { jetstream } from '@nats-io/jetstream';
import { natsTaskStreams } from '../activities/token-stream.ts';
import { connectNats } from '../connections/nats.ts';
import { ensureTokenStream } from '../connections/streams.ts';
import { connectTemporalClient, connectWorker } from '../connections/temporal.ts';
import { tokenSubject, type InferInput } from '../domain/inference.ts';
import { getModel } from '../models/catalog.ts';
import { ModelEngine } from '../workers/node/engine.ts';
import { detectCompute, gpuChoices, type GpuChoice } from '../workers/node/gpu.ts';
import { resolveModelFile } from '../workers/node/model-files.ts';
import { defaultThreads } from '../workers/node/options.ts';
import { NodeServer } from '../workers/node/serve.ts';
import { inferenceWorkflow } from '../workflows/inference.ts';
import { flag, intFlag, median, table, withStack } from './harness.ts';

Runtime.install({ logger: new DefaultLogger('WARN') });

const modelId = flag('model', 'gitblock-tiny');
const tokens = intFlag('tokens', 256);
const repeats = intFlag('repeats', 5);
const threads = intFlag('threads', defaultThreads(availableParallelism()), 0);
const gpu = flag('gpu', 'auto') as GpuChoice;
if (!gpuChoices.includes(gpu)) throw new Error(`--gpu must be one of ${gpuChoices.join(', ')}`);
const parallelism = [1, 4, 8];

const config = loadConfig();
const model = getModel(modelId);
const file = await resolveModelFile(model, { modelDir: config.GITBLOCK_MODEL_DIR });
const compute = await detectCompute(gpu);
const engine = await ModelEngine.load(compute.llama, {
  modelId,
  modelPath: file.path,
  contextSize: Math.min(model.defaultContextLength, tokens + 256),
  sequences: Math.max(...parallelism),
  threads: compute.backend === 'cpu' ? threads : 0,
});
const prompt = engine.renderChat([{ role: 'user', content: 'Write a long story about a lighthouse keeper and the sea.' }]);
const sampling = { temperature: 0, maxTokens: tokens };

console.log(`model ${modelId} (${file.path}), backend ${compute.backend}${compute.devices.length ? ` ${compute.devices.join(', ')}` : ''}, threads ${compute.backend === 'cpu' ? threads : 'n/a'}, ${tokens} tokens per request, median of ${repeats}`);

async function bare(k: number): Promise<{ tps: number; perRequest: number }> {
  const runs: { tps: number; perRequest: number }[] = [];
  for (let r = 0; r < repeats; r++) {
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: k }, () => engine.generate({ promptTokens: prompt, sampling })));
    const seconds = (performance.now() - started) / 1000;
    const total = results.reduce((n, x) => n + x.tokens.length, 0);
    runs.push({ tps: total / seconds, perRequest: total / k / seconds });
  }
  return { tps: median(runs.map((x) => x.tps)), perRequest: median(runs.map((x) => x.perRequest)) };
}

const rows: Record<string, string | number>[] = [];
for (const k of parallelism) {
  const b = await bare(k);
  rows.push({ path: 'bare node-llama-cpp', parallel: k, 'aggregate tok/s': b.tps, 'tok/s per request': b.perRequest, 'generation tok/s in activity': '-' });
}

await withStack(async (stack) => {
  const nc = await connectNats(stack.endpoints.natsUrl, 'bench');
  const target = { address: stack.endpoints.temporalAddress, namespace: stack.endpoints.temporalNamespace };
  const streams = natsTaskStreams(nc, jetstream(nc), await ensureTokenStream(nc));
  const server = await NodeServer.start({ nodeId: 'bench-node', connection: await connectWorker(target), namespace: target.namespace, streams, engines: new Map([[modelId, engine]]), maxParallel: Math.max(...parallelism) + 1, shutdownGraceMs: 5_000 });
  await using client = await connectTemporalClient(target);
  const worker = await Worker.create({
    connection: await connectWorker(target),
    taskQueue: 'bench-control',
    workflowBundle: await bundleWorkflowCode({ workflowsPath: fileURLToPath(new URL('../workflows/index.ts', import.meta.url)), logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} } }),
  });
  let n = 0;
  const one = () => {
    const requestId = `bench-${process.pid}-${n++}`;
    const input: InferInput = { requestId, modelId, messages: [{ role: 'user', content: 'Write a long story about a lighthouse keeper and the sea.' }], sampling, subject: tokenSubject(requestId) };
    return client.workflow.execute(inferenceWorkflow, { taskQueue: 'bench-control', workflowId: `req-${requestId}`, args: [input, ['bench-node']] });
  };
  await worker.runUntil(async () => {
    await one(); // warm-up: first workflow task, stream creation
    for (const k of parallelism) {
      const runs: { tps: number; perRequest: number; gen: number }[] = [];
      for (let r = 0; r < repeats; r++) {
        const started = performance.now();
        const outcomes = await Promise.all(Array.from({ length: k }, one));
        const seconds = (performance.now() - started) / 1000;
        const total = outcomes.reduce((s, o) => s + o.result.tokens.length, 0);
        runs.push({ tps: total / seconds, perRequest: total / k / seconds, gen: median(outcomes.map((o) => o.result.timings.tokensPerSecond)) });
      }
      rows.push({ path: 'infer activity (Temporal + JetStream)', parallel: k, 'aggregate tok/s': median(runs.map((x) => x.tps)), 'tok/s per request': median(runs.map((x) => x.perRequest)), 'generation tok/s in activity': median(runs.map((x) => x.gen)) });
    }
  });
  await server.shutdown();
  await nc.close();
});

console.log(`\n${table(rows)}`);
await engine[Symbol.asyncDispose]();
process.exit(0);
