/**
 * The GPU node as operators run it: real `gitblock-node` processes on the test stack, serving
 * the fixture model on CPU to the inference workflow.
 */
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { CancelledFailure, WorkflowFailedError, type Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDelivered } from '../../activities/token-stream.ts';
import { connectNats } from '../../connections/nats.ts';
import { ensureTokenStream, nodesKv } from '../../connections/streams.ts';
import { connectTemporalClient, connectWorker } from '../../connections/temporal.ts';
import { heartbeatSchema } from '../../domain/heartbeat.ts';
import { cancelSubject, tokenStreamName, tokenSubject, type InferInput, type TokenChunk } from '../../domain/inference.ts';
import { inferenceWorkflow } from '../../workflows/inference.ts';
import { stack, unique, workflowBundle } from '../../test/helpers.ts';
import { runNodeCli, nodeArgs, startNodeProcess, type NodeProcess } from '../../test/node-process.ts';
import { startTestEdge, type TestEdge } from '../../test/edge.ts';
import { connectMongo, type MongoHandle } from '../../connections/mongo.ts';

let client: Client & AsyncDisposable;
let worker: Worker;
let running: Promise<void>;
let nc: NatsConnection;
let jsm: JetStreamManager;
let mongo: MongoHandle;
let edge: TestEdge;
const taskQueue = unique('node-test-control');
const nodes: NodeProcess[] = [];

async function node(name: string, extra: string[] = [], maxParallel = 2): Promise<NodeProcess> {
  const n = await startNodeProcess({ nodeId: unique(name), edge: edge.address, extraArgs: extra, maxParallel });
  nodes.push(n);
  return n;
}

function request(maxTokens: number, content = 'Tell me about the sea.'): InferInput {
  const requestId = unique('r');
  return { requestId, modelId: 'gitblock-tiny', messages: [{ role: 'user', content }], sampling: { temperature: 0, maxTokens }, subject: tokenSubject(requestId) };
}

function run(input: InferInput, candidates: string[]) {
  return client.workflow.start(inferenceWorkflow, { taskQueue, workflowId: `req-${input.requestId}`, args: [input, candidates] });
}

/** Every chunk on a subject, raw, in stream order. */
async function chunks(subject: string): Promise<TokenChunk[]> {
  const out: TokenChunk[] = [];
  let seq = 1;
  for (;;) {
    const m = await jsm.direct.getMessage(tokenStreamName, { seq, next_by_subj: subject });
    if (!m) return out;
    out.push(m.json<TokenChunk>());
    seq = m.seq + 1;
  }
}

async function waitForChunks(subject: string, n: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await chunks(subject)).length < n) {
    if (Date.now() > deadline) throw new Error(`fewer than ${n} chunks on ${subject} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  client = await connectTemporalClient({ address: stack().temporalAddress, namespace: stack().temporalNamespace });
  worker = await Worker.create({
    connection: await connectWorker({ address: stack().temporalAddress, namespace: stack().temporalNamespace }),
    taskQueue,
    workflowBundle: await workflowBundle(),
  });
  running = worker.run();
  nc = await connectNats(stack().natsUrl, 'node-test');
  jsm = await ensureTokenStream(nc);
  jsm = await jetstreamManager(nc);
  mongo = await connectMongo(stack().mongodbUri, unique('node-test'));
  // Nodes register and serve through an edge; their actors' queue is left unpolled here.
  edge = await startTestEdge({ db: mongo.db, controlTaskQueue: unique('node-test-actors') });
});

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
  await edge?.stop();
  await mongo?.db.dropDatabase().catch(() => {});
  await mongo?.[Symbol.asyncDispose]();
  worker.shutdown();
  await running;
  await nc.close();
  await client[Symbol.asyncDispose]();
});

describe('gitblock-node', () => {
  it('serves the infer activity started from a workflow, streaming the answer to its subject, and heartbeats its state', async () => {
    const a = await node('a');
    const input = request(48);
    const outcome = await (await run(input, [a.nodeId])).result();

    expect(outcome.result.nodeId).toBe(a.nodeId);
    expect(outcome.result.tokens).toHaveLength(48);
    expect(outcome.result.finishReason).toBe('length');
    expect(outcome.result.modelHash).toMatch(/^[0-9a-f]{64}$/);
    const delivered = await readDelivered(jsm, input.subject);
    expect(delivered.tokens).toEqual(outcome.result.tokens);
    expect(delivered.text).toBe(outcome.result.text);
    expect(delivered.finished).toEqual({ reason: 'length', usage: outcome.result.usage });

    const entry = await (await nodesKv(nc)).get(a.nodeId);
    const beat = heartbeatSchema.parse(entry!.json());
    expect(beat).toMatchObject({ nodeId: a.nodeId, status: 'serving', maxParallel: 2, gpu: { backend: 'cpu' } });
    expect(beat.models).toEqual([expect.objectContaining({ id: 'gitblock-tiny', hash: outcome.result.modelHash, slots: 2 })]);
  });

  it('shares load between two nodes serving the same model', async () => {
    // Node a of the first test would poll the same model queue, and being faster take most of it.
    await Promise.all(nodes.splice(0).map((n) => n.stop('SIGKILL')));
    const [b, c] = await Promise.all([node('b', ['--test-faults', 'slow:10']), node('c', ['--test-faults', 'slow:10'])]);
    // Which poller Temporal hands each task to is its own business (task queue partitions): send
    // bursts of 6 until both nodes have served, a few bursts at most.
    const served: string[] = [];
    for (let burst = 0; burst < 4 && !(served.includes(b.nodeId) && served.includes(c.nodeId)); burst++) {
      const handles = await Promise.all(Array.from({ length: 6 }, (_, i) => run(request(30, `question ${burst}.${i}`), [])));
      served.push(...(await Promise.all(handles.map((h) => h.result()))).map((o) => o.result.nodeId));
    }
    expect(served).toEqual(expect.arrayContaining([b.nodeId, c.nodeId]));
  });

  it('fails over when the serving node is killed mid-answer: the stream is continuous and equals an uninterrupted answer', async () => {
    const [doomed, survivor] = await Promise.all([node('doomed', ['--test-faults', 'slow:25']), node('survivor')]);
    const input = request(200);
    const handle = await run(input, [doomed.nodeId, survivor.nodeId]);
    await waitForChunks(input.subject, 5);
    await doomed.stop('SIGKILL');

    const outcome = await handle.result();
    expect(outcome.result.nodeId).toBe(survivor.nodeId);
    expect(outcome.result.continuedFromTokens).toBeGreaterThan(0);
    expect(outcome.attempts.map((a) => a.outcome)).toEqual(['timeout', 'ok']);

    const all = await chunks(input.subject);
    expect(all.map((c) => c.seq)).toEqual(all.map((_, i) => i)); // no gap, no repeat
    expect(new Set(all.map((c) => c.nodeId))).toEqual(new Set([doomed.nodeId, survivor.nodeId]));
    expect(all.flatMap((c) => c.tokens)).toEqual(outcome.result.tokens);
    expect(all.map((c) => c.text).join('')).toBe(outcome.result.text);

    // Greedy decoding is deterministic: the stitched answer is exactly what one node says alone.
    const alone = request(200);
    const reference = await (await run(alone, [survivor.nodeId])).result();
    expect(outcome.result.tokens).toEqual(reference.result.tokens);
    expect(outcome.result.text).toBe(reference.result.text);
  });

  it('stops generating when the request is cancelled, through Temporal or the cancel subject', async () => {
    const d = await node('d', ['--test-faults', 'slow:20']);
    const viaTemporal = request(1000);
    const handle = await run(viaTemporal, [d.nodeId]);
    await waitForChunks(viaTemporal.subject, 3);
    await handle.cancel();
    const error = await handle.result().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect((error as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);

    const viaNats = request(1000);
    const second = await run(viaNats, [d.nodeId]);
    await waitForChunks(viaNats.subject, 3);
    nc.publish(cancelSubject(viaNats.requestId));
    const failure = (await second.result().catch((e: unknown) => e)) as WorkflowFailedError;
    expect(failure.cause).toMatchObject({ type: 'INFER_CANCELLED' });

    // Temporal's cancel reaches the node with its next heartbeat (throttled to one a second), so
    // the stream may grow a little after the workflow ended: it must then stop for good, long
    // before the 1000 tokens asked for (at 20 ms a token that is 20 s).
    for (const subject of [viaTemporal.subject, viaNats.subject]) {
      const length = async () => (await chunks(subject)).flatMap((c) => c.tokens).length;
      let before = await length();
      for (let i = 0; i < 5; i++) {
        await new Promise((r) => setTimeout(r, 1_500));
        const now = await length();
        if (now === before) break;
        before = now;
      }
      await new Promise((r) => setTimeout(r, 1_500));
      expect(await length()).toBe(before); // nothing generated after the stop
      expect(before).toBeLessThan(400);
    }
  });

  it('on SIGTERM finishes the request in flight, goes offline and exits 0', async () => {
    const e = await node('e', ['--test-faults', 'slow:10']);
    const input = request(150);
    const handle = await run(input, [e.nodeId]);
    await waitForChunks(input.subject, 2);
    e.child.kill('SIGTERM');
    const outcome = await handle.result();
    expect(outcome.result.nodeId).toBe(e.nodeId);
    expect(outcome.result.tokens).toHaveLength(150);
    expect(await e.exited).toBe(0);
    expect(e.output()).toMatch(/SIGTERM: no new requests; finishing 1 in flight/);
    const entry = await (await nodesKv(nc)).get(e.nodeId);
    expect(entry === null || entry.operation !== 'PUT').toBe(true);
  });

  it('refuses a model that does not fit, with the numbers', async () => {
    const { args, env } = nodeArgs({ nodeId: unique('toobig'), edge: edge.address, extraArgs: ['--max-memory', '1MiB'] });
    const child = runNodeCli(args, env);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).toBe(1);
    expect(stderr).toMatch(/gitblock-tiny does not fit: it needs \d+\.\d\d GiB \(weights \d+\.\d\d GiB \+ context \d+\.\d\d GiB for 2048 tokens per sequence\) but only 0\.00 GiB is available/);
  });
});
