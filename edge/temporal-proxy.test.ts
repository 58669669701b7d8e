/**
 * What the edge forwards to Temporal, read where it arrives: an upstream that records each call
 * stands in for the frontend (the rest of the stack is real). A node's poll and answers reach
 * Temporal rebuilt from the fields a worker needs, under the node's own name: nothing a node
 * sets can act on a queue for every node (`taskQueueMetadata.maxTasksPerSecond` 0 pauses it),
 * nor choose versioning or deployment options.
 */
import * as grpc from '@grpc/grpc-js';
import proto from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMongo, type MongoHandle } from '../connections/mongo.ts';
import { registerTestNode, startTestEdge, type TestEdge } from '../test/edge.ts';
import { stack, unique } from '../test/helpers.ts';
import { sessionMetadataKey } from './protocol.ts';
import { workflowServiceDefinition } from './temporal-proxy.ts';

const ws = proto.temporal.api.workflowservice.v1;
const service = 'temporal.api.workflowservice.v1.WorkflowService';

let mongo: MongoHandle;
let edge: TestEdge;
let upstream: grpc.Server;
const received: { method: string; body: Buffer }[] = [];

beforeAll(async () => {
  // The stand-in frontend: records every call; a poll gets one task, so its answer can be tried.
  upstream = new grpc.Server();
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const method of Object.keys(workflowServiceDefinition())) {
    handlers[method] = (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      received.push({ method, body: call.request });
      const reply =
        method === 'PollActivityTaskQueue'
          ? ws.PollActivityTaskQueueResponse.encode(ws.PollActivityTaskQueueResponse.fromObject({ taskToken: Buffer.from('task-1'), activityType: { name: 'echo' }, startToCloseTimeout: { seconds: 60 } })).finish()
          : new Uint8Array();
      callback(null, Buffer.from(reply));
    };
  }
  upstream.addService(workflowServiceDefinition(), handlers);
  const port = await new Promise<number>((resolve, reject) => upstream.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  mongo = await connectMongo(stack().mongodbUri, unique('edge-proxy'));
  edge = await startTestEdge({ db: mongo.db, controlTaskQueue: unique('actors'), temporalAddress: `127.0.0.1:${port}` });
});

afterAll(async () => {
  await edge?.stop();
  upstream?.forceShutdown();
  await mongo?.db.dropDatabase().catch(() => {});
  await mongo?.[Symbol.asyncDispose]();
});

describe('what the edge forwards to Temporal', () => {
  it('rebuilds a poll and its answer from the fields a worker needs, under the node’s name', async () => {
    const node = await registerTestNode(edge.address);
    const { token } = await node.client.openSession(node.account, node.info, node.nodeId, 2);
    const raw = new grpc.Client(edge.address, grpc.credentials.createInsecure());
    const call = (method: string, body: Uint8Array) =>
      new Promise<Buffer>((resolve, reject) => {
        const metadata = new grpc.Metadata();
        metadata.set(sessionMetadataKey, token);
        raw.makeUnaryRequest(`/${service}/${method}`, (b: Buffer) => b, (b: Buffer) => b, Buffer.from(body), metadata, { deadline: Date.now() + 5_000 }, (err, value) => (err ? reject(err) : resolve(value!)));
      });
    const namespace = node.info.namespace;
    const poll = ws.PollActivityTaskQueueRequest.encode({
      namespace,
      taskQueue: { name: `model.gitblock-tiny`, kind: 2, normalName: 'elsewhere' },
      identity: 'whoever-i-say',
      taskQueueMetadata: { maxTasksPerSecond: { value: 0 } },
      workerVersionCapabilities: { buildId: 'evil', useVersioning: true },
      deploymentOptions: { deploymentName: 'evil', buildId: 'evil' },
      workerInstanceKey: 'k',
    }).finish();
    const task = ws.PollActivityTaskQueueResponse.decode(await call('PollActivityTaskQueue', poll));
    expect(Buffer.from(task.taskToken).toString()).toBe('task-1');
    const forwardedPoll = ws.PollActivityTaskQueueRequest.decode(received.find((r) => r.method === 'PollActivityTaskQueue')!.body);
    expect(ws.PollActivityTaskQueueRequest.toObject(forwardedPoll)).toEqual({ namespace, taskQueue: { name: 'model.gitblock-tiny', kind: 1 }, identity: `${node.nodeId}@edge` });

    const completed = ws.RespondActivityTaskCompletedRequest.encode({
      namespace,
      taskToken: task.taskToken,
      result: { payloads: [] },
      identity: 'someone-else',
      workerVersion: { buildId: 'evil' },
      deploymentOptions: { deploymentName: 'evil', buildId: 'evil' },
    }).finish();
    await call('RespondActivityTaskCompleted', completed);
    const forwardedAnswer = ws.RespondActivityTaskCompletedRequest.decode(received.find((r) => r.method === 'RespondActivityTaskCompleted')!.body);
    expect(ws.RespondActivityTaskCompletedRequest.toObject(forwardedAnswer)).toEqual({ namespace, taskToken: task.taskToken, result: {}, identity: `${node.nodeId}@edge` });
    raw.close();
    node.client.close();
  });
});
