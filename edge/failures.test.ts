/**
 * What a node may say when it fails a task, through the edge: a claim that would end the
 * request ("cancelled", "superseded") is believed only when the edge saw its cause; any other
 * failure, and a node's "bad input", fails the request over to the next node.
 */
import { ApplicationFailure } from '@temporalio/common';
import { Worker, type NativeConnection } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMongo, type MongoHandle } from '../connections/mongo.ts';
import { connectTemporalClient, connectWorker } from '../connections/temporal.ts';
import { tokenSubject, type InferInput } from '../domain/inference.ts';
import { connectThroughEdge, inferAnswer, registerTestNode, startTestEdge, type TestEdge } from '../test/edge.ts';
import { stack, unique, workflowBundle } from '../test/helpers.ts';
import { inferenceWorkflow } from '../workflows/inference.ts';

let mongo: MongoHandle;
let edge: TestEdge;
const connections: NativeConnection[] = [];

beforeAll(async () => {
  mongo = await connectMongo(stack().mongodbUri, unique('edge-failures'));
  edge = await startTestEdge({ db: mongo.db, controlTaskQueue: unique('actors') });
});

afterAll(async () => {
  await Promise.all(connections.map((c) => c.close()));
  await edge?.stop();
  await mongo?.db.dropDatabase().catch(() => {});
  await mongo?.[Symbol.asyncDispose]();
});

/** A node through the edge whose `infer` fails with `type`, and an honest one after it. */
async function failThenServe(type: string) {
  const liar = await registerTestNode(edge.address);
  const honest = await registerTestNode(edge.address);
  const [liarConnection, honestConnection] = await Promise.all([connectThroughEdge(liar, edge.address), connectThroughEdge(honest, edge.address)]);
  connections.push(liarConnection, honestConnection);
  const workers = await Promise.all([
    Worker.create({ connection: liarConnection, namespace: liar.info.namespace, taskQueue: `node.${liar.nodeId}`, activities: { infer: async () => { throw ApplicationFailure.nonRetryable('no, I will not', type); } } }),
    Worker.create({ connection: honestConnection, namespace: honest.info.namespace, taskQueue: `node.${honest.nodeId}`, activities: { infer: async (input: InferInput) => inferAnswer(input, honest.nodeId) } }),
  ]);
  const taskQueue = unique('control');
  const control = await Worker.create({ connection: await connectWorker({ address: stack().temporalAddress, namespace: stack().temporalNamespace }), taskQueue, workflowBundle: await workflowBundle() });
  await using temporal = await connectTemporalClient({ address: stack().temporalAddress, namespace: stack().temporalNamespace });
  const requestId = unique('r');
  const input: InferInput = { requestId, modelId: 'gitblock-tiny', prompt: 'hi', sampling: { temperature: 0, maxTokens: 4 }, subject: tokenSubject(requestId) };
  const run = () => temporal.workflow.execute(inferenceWorkflow, { taskQueue, workflowId: `req-${requestId}`, args: [input, [liar.nodeId, honest.nodeId]] });
  const outcome = await workers[0].runUntil(workers[1].runUntil(control.runUntil(run)));
  return { outcome, liar, honest };
}

describe('failures a node reports through the edge', () => {
  it.each(['INFER_CANCELLED', 'INFER_SUPERSEDED'])('a %s the edge did not see is an ordinary failure: the request fails over', async (type) => {
    const { outcome, liar, honest } = await failThenServe(type);
    expect(outcome.result.nodeId).toBe(honest.nodeId);
    expect(outcome.attempts[0]).toMatchObject({ taskQueue: `node.${liar.nodeId}`, outcome: 'failed', error: expect.stringContaining(`unverified ${type}`) });
  });

  it("fails over a node's claim that the input is bad", async () => {
    const { outcome, honest } = await failThenServe('INFER_BAD_INPUT');
    expect(outcome.result.nodeId).toBe(honest.nodeId);
    expect(outcome.attempts.map((a) => a.outcome)).toEqual(['failed', 'ok']);
  });
});
