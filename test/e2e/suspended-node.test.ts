/**
 * A suspended node gets no work, on the real network with real node processes: the edge
 * refuses its polls (its own queue and the model's shared one it keeps polling), a task its
 * long poll brings back anyway goes to another node, and the gateway stops advertising it.
 */
import protoModule from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { tokenSubject, type InferInput } from '../../domain/inference.ts';
import { SUSPEND_AFTER_CONSECUTIVE_VERIFICATION_FAILURES } from '../../domain/reputation.ts';
import { workflowIds } from '../../temporal.config.ts';
import { inferenceWorkflow } from '../../workflows/inference.ts';
import { verificationVerdictSignal } from '../../workflows/node-actor.ts';
import { unique } from '../helpers.ts';
import type { NodeProcess } from '../node-process.ts';
import { startNetwork, type Network } from './harness.ts';
import { store } from '../../store/index.ts';

let net: Network;
let a: NodeProcess;
let key: string;

beforeAll(async () => {
  net = await startNetwork({ requestsPerMinute: 1000, tokensPerDay: 10_000_000 });
  a = await net.startNode('standing-a');
  const issued = await fetch(`${net.url}/v1/keys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  key = ((await issued.json()) as { key: string }).key;
});
afterAll(async () => {
  await net?.stop();
});

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await f();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function tinyNodes(): Promise<number> {
  const res = await fetch(`${net.url}/v1/models`);
  const body = (await res.json()) as { data: { id: string; gitblock: { nodes: number } }[] };
  return body.data.find((m) => m.id === 'gitblock-tiny')?.gitblock.nodes ?? 0;
}

/** `/health`'s body; 200 while the gateway's own dependencies are up, whatever the nodes. */
async function health(): Promise<unknown> {
  const res = await fetch(`${net.url}/health`);
  expect(res.status).toBe(200);
  return res.json();
}

describe('a suspended node', () => {
  it('is refused work at the edge, even from the shared queue, and is not advertised', async () => {
    expect(await tinyNodes()).toBe(1);
    expect(await health()).toMatchObject({ status: 'ok', liveNodes: 1, models: ['gitblock-tiny'], reasons: [] });

    // Suspended the only way the network suspends: failed spot checks, signalled by a trusted client.
    const actor = net.temporal.workflow.getHandle(workflowIds.node(a.nodeId));
    for (let i = 0; i < SUSPEND_AFTER_CONSECUTIVE_VERIFICATION_FAILURES; i++) {
      await actor.signal(verificationVerdictSignal, { requestId: unique('lie'), passed: false, at: Date.now() });
    }
    const nodes = store(net.mongo.db).nodes;
    await until('projected as suspended', async () => ((await nodes.findOne({ _id: a.nodeId }))?.state === 'suspended' ? true : undefined));
    // Both caches re-read within seconds on their own; refreshing here only saves the wait.
    await Promise.all([net.edge.standings.refresh(), net.standings.refresh()]);
    expect(net.edge.standings.barred(a.nodeId)).toBe('suspended');

    // Not advertised, and not admitted: no node can serve the model now; health says so, and why.
    expect(await tinyNodes()).toBe(0);
    expect(await health()).toMatchObject({ status: 'degraded', liveNodes: 0, models: [], reasons: [expect.stringMatching(/no node can serve any model now/)] });
    const refused = await fetch(`${net.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: 'gitblock-tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 }),
    });
    expect(refused.status).toBe(503);
    // Transient, like every 503 the API answers: it says when to try again.
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('no_node_available');

    // Straight to the model's shared queue, which the suspended node was polling when it was
    // suspended: it must not serve it.
    const requestId = unique('shared').replace(/-/g, '');
    const input: InferInput = { requestId, modelId: 'gitblock-tiny', messages: [{ role: 'user', content: 'Name a river.' }], sampling: { temperature: 0, maxTokens: 12 }, subject: tokenSubject(requestId) };
    const handle = await net.temporal.workflow.start(inferenceWorkflow, { taskQueue: net.controlTaskQueue, workflowId: `req-${requestId}`, args: [input, []] });
    await new Promise((r) => setTimeout(r, 6_000));
    const described = await handle.describe();
    expect(described.status.name).toBe('RUNNING');
    // Waiting for a node, not started by the suspended one. Its long poll, open since before the
    // suspension, did bring the task back: the edge failed it back to Temporal (attempt 2 waits).
    const [pending] = described.raw.pendingActivities ?? [];
    expect(pending?.state).toBe(protoModule.temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED);
    if ((pending?.attempt ?? 1) > 1) expect(pending?.lastFailure?.applicationFailureInfo?.type).toBe('NODE_BARRED');

    // An honest node joins: it takes the waiting request.
    const b = await net.startNode('standing-b');
    const { result } = await handle.result();
    expect(result.nodeId).toBe(b.nodeId);
    await net.standings.refresh();
    expect(await tinyNodes()).toBe(1);
  }, 120_000);
});
