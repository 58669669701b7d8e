/**
 * The infer step against the real Temporal dev server, with nodes played by plain activity
 * workers: an untrusted node's malformed or mislabelled result is a failed attempt, and the
 * next candidate serves the request.
 */
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectTemporalClient, connectWorker } from '../connections/temporal.ts';
import type { InferInput, InferResult } from '../domain/inference.ts';
import { taskQueues } from '../temporal.config.ts';
import { stack, unique, workflowBundle } from '../test/helpers.ts';
import { inferenceWorkflow } from './inference.ts';

const target = { address: stack().temporalAddress, namespace: stack().temporalNamespace };
let client: Awaited<ReturnType<typeof connectTemporalClient>>;
beforeAll(async () => {
  client = await connectTemporalClient(target);
});
afterAll(async () => {
  await client?.[Symbol.asyncDispose]();
});

function honestResult(input: InferInput, nodeId: string): InferResult {
  return {
    requestId: input.requestId,
    nodeId,
    modelId: input.modelId,
    modelHash: 'ab'.repeat(32),
    text: 'hello',
    tokens: [5, 6],
    finishReason: 'stop',
    usage: { promptTokens: 3, completionTokens: 2, totalTokens: 5 },
    continuedFromTokens: 0,
    timings: { timeToFirstTokenMs: 1, tokensPerSecond: 10, totalMs: 2 },
  };
}

/** Runs `inferenceWorkflow` over nodes whose `infer` answers as given. */
async function serve(nodes: [string, (input: InferInput) => unknown][]) {
  const taskQueue = unique('infer-check');
  const connection = await connectWorker(target);
  const workers = [
    await Worker.create({ connection, taskQueue, workflowBundle: await workflowBundle() }),
    ...(await Promise.all(
      nodes.map(([nodeId, answer]) => Worker.create({ connection, taskQueue: taskQueues.node(nodeId), activities: { infer: async (input: InferInput) => answer(input) } })),
    )),
  ];
  const requestId = unique('r').replace(/-/g, '');
  const input: InferInput = { requestId, modelId: 'gitblock-tiny', prompt: 'Hi', sampling: { temperature: 0, maxTokens: 4 }, subject: `gitblock.tokens.${requestId}` };
  const run = client.workflow.execute(inferenceWorkflow, { taskQueue, workflowId: `req-${requestId}`, args: [input, nodes.map(([id]) => id)] });
  try {
    return await Promise.race([run, ...workers.map((w) => w.run().then(() => Promise.reject(new Error('a worker stopped'))))]);
  } finally {
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
  }
}

describe('inference results from untrusted nodes', () => {
  it('fails over from a malformed result, a result over max_tokens, and one claiming another node’s name', async () => {
    const [bad, over, impostor, good] = ['bad', 'over', 'impostor', 'good'].map((n) => unique(n));
    const outcome = await serve([
      [bad!, () => ({ text: 'no usage, no tokens' })],
      [over!, (input) => ({ ...honestResult(input, over!), tokens: [1, 2, 3, 4, 5] })],
      [impostor!, (input) => honestResult(input, good!)],
      [good!, (input) => honestResult(input, good!)],
    ]);
    expect(outcome.result.nodeId).toBe(good);
    expect(outcome.attempts.map((a) => a.outcome)).toEqual(['failed', 'failed', 'failed', 'ok']);
    expect(outcome.attempts[0]!.error).toMatch(/^invalid result: /);
    expect(outcome.attempts[1]!.error).toMatch(/tokens/);
    expect(outcome.attempts[2]!.error).toContain(`node ${impostor} answered as ${good}`);
  });
});
