/**
 * What the edge adds to a streamed request. Two nodes on one stack serve the same engine: one
 * the way a GPU node does (registered, with a session, polling Temporal and publishing its
 * chunks through an in-process edge), one straight to Temporal and JetStream. Requests are
 * routed to one node or the other explicitly and run one at a time, alternating in pairs whose
 * order flips every pair (ABBA), so drift on a noisy machine falls on both paths alike.
 *
 * Measured by the client, as a reader of the request's JetStream subject: time to first token
 * (workflow start to the first chunk seen) and tokens/s over the whole answer (workflow start to
 * the final chunk), plus the rate after the first chunk, where per-chunk costs would show. Two
 * node-side figures separate the edge from Temporal's much noisier dispatch: the first token
 * counted from the activity's start, and each chunk's round trip (publish to ack).
 *
 *   npx tsx bench/edge.ts [--requests 30] [--model gitblock-tiny|smollm2-135m] [--tokens 256] [--warmup 3] [--threads 1] [--gpu auto|cpu|cuda|vulkan]
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { DefaultLogger, NativeConnection, Runtime, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { natsTaskStreams, type TaskStreams } from '../activities/token-stream.ts';
import { loadConfig } from '../config/env.ts';
import { chainClient } from '../connections/chain.ts';
import { connectMongo } from '../connections/mongo.ts';
import { connectNats } from '../connections/nats.ts';
import { ensureTokenStream } from '../connections/streams.ts';
import { connectTemporalClient, connectWorker } from '../connections/temporal.ts';
import { tokenSubject, tokenSubjectPrefix, type InferInput, type TokenChunk } from '../domain/inference.ts';
import { sessionMetadataKey } from '../edge/protocol.ts';
import { startEdge } from '../edge/server.ts';
import { MongoNonceStore } from '../gateway/registration/mongo-nonces.ts';
import { getModel } from '../models/catalog.ts';
import { generateFixtureModel } from '../models/fixture/tiny-llama.ts';
import { taskQueues } from '../temporal.config.ts';
import { EdgeClient, SessionKeeper } from '../workers/node/edge-client.ts';
import { ModelEngine } from '../workers/node/engine.ts';
import { detectCompute, gpuChoices, type GpuChoice } from '../workers/node/gpu.ts';
import { signRegistration } from '../workers/node/identity.ts';
import { resolveModelFile } from '../workers/node/model-files.ts';
import { NODE_VERSION } from '../workers/node/node.ts';
import { NodeServer } from '../workers/node/serve.ts';
import { inferenceWorkflow } from '../workflows/inference.ts';
import { flag, intFlag, median, percentile, table, withStack } from './harness.ts';

Runtime.install({ logger: new DefaultLogger('WARN') });

const modelId = flag('model', 'gitblock-tiny');
const requests = intFlag('requests', 30);
const tokens = intFlag('tokens', 256);
const warmup = intFlag('warmup', 3, 0);
const threads = intFlag('threads', 1, 0);
const gpu = flag('gpu', 'auto') as GpuChoice;
if (!gpuChoices.includes(gpu)) throw new Error(`--gpu must be one of ${gpuChoices.join(', ')}`);
// Each node polls its own queue and the model's, and each poller holds a slot.
const maxParallel = 2;
const messages = [{ role: 'user' as const, content: 'Write a long story about a lighthouse keeper and the sea.' }];
const sampling = { temperature: 0, maxTokens: tokens };

const config = loadConfig();
const model = getModel(modelId);
const file =
  modelId === 'gitblock-tiny'
    ? await generateFixtureModel(join(config.GITBLOCK_MODEL_DIR, 'gitblock-tiny.gguf'))
    : await resolveModelFile(model, { modelDir: config.GITBLOCK_MODEL_DIR });
const compute = await detectCompute(gpu);
// One engine for both nodes: requests never overlap, and the paths differ only in the network.
const engine = await ModelEngine.load(compute.llama, {
  modelId,
  modelPath: file.path,
  contextSize: Math.min(model.defaultContextLength, tokens + 256),
  sequences: maxParallel,
  threads: compute.backend === 'cpu' ? threads : 0,
});
const engines = new Map([[modelId, engine]]);

interface Seen {
  firstAt: number;
  firstTokens: number;
  lastAt: number;
  tokens: number;
}

/** Times the chunks of each request as a client reading the token stream sees them. */
function watchChunks(nc: NatsConnection) {
  const pending = new Map<string, { seen?: Seen; done: (seen: Seen) => void }>();
  nc.subscribe(`${tokenSubjectPrefix}.>`, {
    callback: (err, msg) => {
      const at = performance.now();
      const entry = pending.get(msg.subject);
      if (err || !entry) return;
      const chunk = JSON.parse(msg.string()) as TokenChunk;
      const seen = (entry.seen ??= { firstAt: at, firstTokens: chunk.tokens.length, lastAt: at, tokens: 0 });
      seen.tokens += chunk.tokens.length;
      seen.lastAt = at;
      if (chunk.finish) {
        pending.delete(msg.subject);
        entry.done(seen);
      }
    },
  });
  return (subject: string): Promise<Seen> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no final chunk on ${subject} within 120 s`)), 120_000);
      pending.set(subject, {
        done: (seen) => {
          clearTimeout(timer);
          resolve(seen);
        },
      });
    });
}

/** What the node itself saw of the request being measured (requests never overlap). */
interface NodeSide {
  /**
   * The activity's first step on the stream: reading what was delivered, or, on a first attempt
   * (which has nothing to read), taking its publisher.
   */
  readAt: number;
  /** Each chunk's round trip, publish to ack: the one hop the edge adds to every chunk. */
  publishMs: number[];
}

let nodeSide: NodeSide = { readAt: NaN, publishMs: [] };

function timedStreams(streams: TaskStreams): TaskStreams {
  return {
    ...streams,
    readDelivered: (input, options) => {
      nodeSide.readAt = performance.now();
      return streams.readDelivered(input, options);
    },
    publisher: (input) => {
      if (Number.isNaN(nodeSide.readAt)) nodeSide.readAt = performance.now();
      const publisher = streams.publisher(input);
      return {
        publish: async (chunk, expectLastSubjectSeq) => {
          const started = performance.now();
          const seq = await publisher.publish(chunk, expectLastSubjectSeq);
          nodeSide.publishMs.push(performance.now() - started);
          return seq;
        },
      };
    },
  };
}

interface Sample {
  ttftMs: number;
  /** From the activity's start to the first chunk seen: TTFT less Temporal's dispatch. */
  activityTtftMs: number;
  tokensPerSecond: number;
  streamTokensPerSecond: number;
  tokens: number;
  publishMs: number[];
}

/** The distribution-free 95 % interval of a median: order statistics of Binomial(n, 1/2). */
function medianInterval(values: number[]): [number, number] {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  let k = 0;
  let below = 0;
  let term = 0.5 ** n; // P(X = 0)
  while (k < n && below + term <= 0.025) {
    below += term;
    term = (term * (n - k)) / (k + 1);
    k++;
  }
  // k = how many order statistics may be dropped from each end (0 when n is too small).
  return [sorted[Math.max(0, k - 1)]!, sorted[Math.min(n - 1, n - k)]!];
}

const fmt = (v: number, digits = 2) => v.toFixed(digits);
const signed = (v: number) => `${v >= 0 ? '+' : ''}${fmt(v)}`;

await withStack(async (stack) => {
  const e = stack.endpoints;
  const temporal = { address: e.temporalAddress, namespace: e.temporalNamespace };
  await using client = await connectTemporalClient(temporal);
  await using mongo = await connectMongo(e.mongodbUri, 'gitblock-bench-edge');
  const edgeNc = await connectNats(e.natsUrl, 'bench-edge');
  const nodeNc = await connectNats(e.natsUrl, 'bench-direct-node');
  const readerNc = await connectNats(e.natsUrl, 'bench-reader');

  // The edge, as tests start it: this stack's chain, a database of registrations, and an
  // unpolled queue for the node actors that registration starts.
  const nonces = new MongoNonceStore(mongo.db);
  await nonces.ensureIndexes();
  const edge = await startEdge({
    listen: '127.0.0.1:0',
    temporal,
    temporalClient: client,
    db: mongo.db,
    nc: edgeNc,
    nonces,
    chainId: await chainClient(e.rpcUrl).getChainId(),
    audience: 'gitblock-bench-edge',
    controlTaskQueue: 'bench-edge-actors',
    log: (line) => console.error(line),
  });

  // With the edge: registered and in session, as `gitblock-node start` does it.
  const edgeNode = `bench-edge-${process.pid}`;
  const account = privateKeyToAccount(generatePrivateKey());
  const edgeClient = new EdgeClient(edge.address);
  const info = await edgeClient.info();
  await edgeClient.register(
    await signRegistration(account, { nodeId: edgeNode, models: [modelId], modelHashes: [`0x${engine.modelHash}`], gpu: compute.backend, version: NODE_VERSION }, info.chainId),
  );
  let edgeConnection: NativeConnection | undefined;
  const keeper = new SessionKeeper(
    edgeClient,
    () => edgeClient.openSession(account, info, edgeNode, maxParallel),
    async (token) => {
      await edgeConnection?.setMetadata({ [sessionMetadataKey]: token });
    },
    (line) => console.error(line),
  );
  edgeConnection = await NativeConnection.connect({ address: edge.address, metadata: { [sessionMetadataKey]: await keeper.start() } });
  const viaEdge = await NodeServer.start({ nodeId: edgeNode, connection: edgeConnection, namespace: info.namespace, streams: timedStreams(edgeClient.streams()), engines, maxParallel, shutdownGraceMs: 5_000 });

  // Without: the same engine on Temporal and JetStream directly.
  const directNode = `bench-direct-${process.pid}`;
  const direct = await NodeServer.start({
    nodeId: directNode,
    connection: await connectWorker(temporal),
    namespace: temporal.namespace,
    streams: timedStreams(natsTaskStreams(nodeNc, jetstream(nodeNc), await ensureTokenStream(nodeNc))),
    engines,
    maxParallel,
    shutdownGraceMs: 5_000,
  });

  const control = await Worker.create({
    connection: await connectWorker(temporal),
    taskQueue: 'bench-edge-control',
    workflowBundle: await bundleWorkflowCode({ workflowsPath: fileURLToPath(new URL('../workflows/index.ts', import.meta.url)), logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} } }),
  });
  const expectFinal = watchChunks(readerNc);
  await readerNc.flush();

  let n = 0;
  const one = async (nodeId: string): Promise<Sample> => {
    const requestId = `bench-${process.pid}-${n++}`;
    const input: InferInput = { requestId, modelId, messages, sampling, subject: tokenSubject(requestId) };
    const seen = expectFinal(input.subject);
    nodeSide = { readAt: NaN, publishMs: [] };
    const started = performance.now();
    const outcome = await client.workflow.execute(inferenceWorkflow, { taskQueue: 'bench-edge-control', workflowId: `req-${requestId}`, args: [input, [nodeId]] });
    const s = await seen;
    // Both nodes poll the model's shared queue too: a sample served there measures the wrong path.
    const served = outcome.attempts.at(-1)?.taskQueue;
    if (outcome.attempts.length !== 1 || served !== taskQueues.node(nodeId) || outcome.result.nodeId !== nodeId) {
      throw new Error(`request ${requestId} for ${nodeId} was served by ${outcome.result.nodeId} on ${served} after ${outcome.attempts.length} attempts`);
    }
    return {
      ttftMs: s.firstAt - started,
      activityTtftMs: s.firstAt - nodeSide.readAt,
      tokensPerSecond: s.tokens / ((s.lastAt - started) / 1000),
      streamTokensPerSecond: s.lastAt > s.firstAt ? (s.tokens - s.firstTokens) / ((s.lastAt - s.firstAt) / 1000) : NaN,
      tokens: s.tokens,
      publishMs: nodeSide.publishMs,
    };
  };

  const samples = { direct: [] as Sample[], edge: [] as Sample[] };
  await control.runUntil(async () => {
    for (let i = 0; i < warmup; i++) {
      await one(directNode);
      await one(edgeNode);
    }
    for (let i = 0; i < requests; i++) {
      if (i % 2 === 0) {
        samples.direct.push(await one(directNode));
        samples.edge.push(await one(edgeNode));
      } else {
        samples.edge.push(await one(edgeNode));
        samples.direct.push(await one(directNode));
      }
    }
  });

  await viaEdge.shutdown();
  await direct.shutdown();
  keeper.stop();
  edgeClient.close();
  await edge.close();
  for (const nc of [edgeNc, nodeNc, readerNc]) await nc.close();
  report(samples.direct, samples.edge);
});

function report(direct: Sample[], viaEdge: Sample[]): void {
  const col = (s: Sample[], k: Exclude<keyof Sample, 'publishMs'>) => s.map((x) => x[k]).filter((v) => Number.isFinite(v));
  const row = (path: string, s: Sample[]) => ({
    path,
    'TTFT p50 ms': median(col(s, 'ttftMs')),
    'TTFT p90 ms': percentile(col(s, 'ttftMs'), 90),
    'from activity start p50 ms': median(col(s, 'activityTtftMs')),
    'tok/s p50': median(col(s, 'tokensPerSecond')),
    // The slow tail: 90 % of requests were at least this fast.
    'tok/s p10': percentile(col(s, 'tokensPerSecond'), 10),
    'stream tok/s p50': median(col(s, 'streamTokensPerSecond')),
    'chunk publish p50 ms': median(s.flatMap((x) => x.publishMs)),
  });
  const a = row('direct (Temporal + JetStream)', direct);
  const b = row('through the edge', viaEdge);
  const diff = {
    path: 'edge − direct',
    'TTFT p50 ms': signed(b['TTFT p50 ms'] - a['TTFT p50 ms']),
    'TTFT p90 ms': signed(b['TTFT p90 ms'] - a['TTFT p90 ms']),
    'from activity start p50 ms': signed(b['from activity start p50 ms'] - a['from activity start p50 ms']),
    'tok/s p50': `×${fmt(b['tok/s p50'] / a['tok/s p50'], 3)}`,
    'tok/s p10': `×${fmt(b['tok/s p10'] / a['tok/s p10'], 3)}`,
    'stream tok/s p50': `×${fmt(b['stream tok/s p50'] / a['stream tok/s p50'], 3)}`,
    'chunk publish p50 ms': signed(b['chunk publish p50 ms'] - a['chunk publish p50 ms']),
  };
  // Paired: request i through the edge against request i direct, run back to back.
  const ttftDiffs = direct.map((d, i) => viaEdge[i]!.ttftMs - d.ttftMs);
  const activityDiffs = direct.map((d, i) => viaEdge[i]!.activityTtftMs - d.activityTtftMs);
  const tpsRatios = direct.map((d, i) => viaEdge[i]!.tokensPerSecond / d.tokensPerSecond);
  const [dLo, dHi] = medianInterval(ttftDiffs);
  const [rLo, rHi] = medianInterval(tpsRatios);
  const [aLo, aHi] = medianInterval(activityDiffs);

  console.log(`\nmodel ${modelId}, backend ${compute.backend}, threads ${compute.backend === 'cpu' ? threads : 'n/a'}, ${tokens} tokens max (median ${median(col([...direct, ...viaEdge], 'tokens'))} generated), ${requests} requests per path after ${warmup} warm-up pairs, alternating\n`);
  console.log(table([a, b, diff]));
  console.log(`\npaired (edge − direct, back to back): TTFT median ${fmt(median(ttftDiffs))} ms (95 % CI ${fmt(dLo)} … ${fmt(dHi)}), from activity start ${fmt(median(activityDiffs))} ms (${fmt(aLo)} … ${fmt(aHi)}); tok/s ratio median ×${fmt(median(tpsRatios), 3)} (95 % CI ×${fmt(rLo, 3)} … ×${fmt(rHi, 3)})`);
}

await engine[Symbol.asyncDispose]();
process.exit(0);
