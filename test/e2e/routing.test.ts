/**
 * Issue 12's routing on the real stack, through the gateway: sequential traffic spreads over
 * two nodes, a request never waits on a full node's own queue while another node has room, and
 * a busy node is not marked degraded for being busy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenSubject, type InferInput } from '../../domain/inference.ts';

import { taskQueues, workflowIds } from '../../temporal.config.ts';
import { inferenceWorkflow } from '../../workflows/inference.ts';
import type { RequestOutcome } from '../../workflows/request.ts';
import { unique } from '../helpers.ts';
import type { NodeProcess } from '../node-process.ts';
import { startNetwork, type Network } from './harness.ts';
import { store } from '../../store/index.ts';

let net: Network;
let key: string;
let a: NodeProcess;
let b: NodeProcess;

beforeAll(async () => {
  net = await startNetwork({ requestsPerMinute: 10_000, tokensPerDay: 10_000_000 });
  // Two alike nodes, two slots each; slowed a little so a long answer holds its slot for seconds.
  [a, b] = await Promise.all([net.startNode('route-a', ['--test-faults', 'slow:20', '--context-size', '1024']), net.startNode('route-b', ['--test-faults', 'slow:20', '--context-size', '1024'])]);
  key = (await net.keys.issue('routing')).key;
}, 120_000);

afterAll(async () => {
  await net?.stop();
});

async function ask(maxTokens: number): Promise<{ node: string; requestId: string }> {
  const response = await fetch(`${net.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: 'gitblock-tiny', messages: [{ role: 'user', content: 'Say hi.' }], max_tokens: maxTokens, temperature: 0 }),
  });
  expect(response.status).toBe(200);
  await response.json();
  return { node: response.headers.get('x-gitblock-node')!, requestId: response.headers.get('x-gitblock-request-id')! };
}

/** The request's workflow result, once what follows the answer is done. */
const settled = (requestId: string) => net.temporal.workflow.getHandle(workflowIds.request(requestId)).result() as Promise<RequestOutcome>;

describe('routing (issue 12)', () => {
  it('spreads 40 sequential requests over two nodes, at least 10 each', async () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      const { node } = await ask(2);
      counts.set(node, (counts.get(node) ?? 0) + 1);
    }
    expect(counts.get(a.nodeId) ?? 0).toBeGreaterThanOrEqual(10);
    expect(counts.get(b.nodeId) ?? 0).toBeGreaterThanOrEqual(10);
  }, 300_000);

  it("sends no request to a full node's queue while the other has room, and the busy node stays in good standing", async () => {
    // Fill a's own queue behind the router's back (straight onto its queue), as another
    // gateway's traffic would, and wait until its heartbeat says so.
    const holds = [0].map(() => {
      const requestId = unique('hold').replace(/-/g, '');
      const input: InferInput = { requestId, modelId: 'gitblock-tiny', messages: [{ role: 'user', content: 'Tell me a long story.' }], sampling: { temperature: 0, maxTokens: 600 }, subject: tokenSubject(requestId) };
      return net.temporal.workflow.execute(inferenceWorkflow, { taskQueue: net.controlTaskQueue, workflowId: `hold-${requestId}`, args: [input, [a.nodeId]] });
    });
    const deadline = Date.now() + 20_000;
    // Its other slot is held by its idle poller on the model's shared queue: its own queue is full.
    while ((net.control.liveNodes.get(a.nodeId)?.heartbeat.inFlight ?? 0) < 1) {
      if (Date.now() > deadline) throw new Error(`${a.nodeId} never reported its slots full`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // Neither request is ranked to a nor waits on a's queue: each goes to b or, where the
    // router's view of b is full too, waits in the shared queue for whichever node frees a slot.
    const served = await Promise.all([ask(4), ask(4)]);
    const outcomes = await Promise.all(served.map((s) => settled(s.requestId)));
    const seen = JSON.stringify(outcomes.map((o) => ({ node: o.result.nodeId, attempts: o.attempts, ranked: o.route.ranked })));
    for (const outcome of outcomes) {
      expect(outcome.attempts.map((t) => t.taskQueue), seen).not.toContain(taskQueues.node(a.nodeId));
      expect(outcome.route.ranked.map((r) => r.nodeId), seen).not.toContain(a.nodeId);
    }
    await Promise.all(holds);
    // Busy is not failing: a's record shows no failure, and it is not degraded.
    const doc = await store(net.mongo.db).nodes.findOne({ _id: a.nodeId });
    expect(doc?.record.failures ?? 0).toBe(0);
    expect(doc?.state).not.toBe('degraded');
  }, 300_000);
});
