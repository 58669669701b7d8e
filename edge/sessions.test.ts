/**
 * Sessions at the edge, against the real stack: a node's worker keeps serving across session
 * expiries because the node renews in time, and an expired session is refused.
 */
import * as grpc from '@grpc/grpc-js';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMongo, type MongoHandle } from '../connections/mongo.ts';
import { connectTemporalClient, connectWorker } from '../connections/temporal.ts';
import { tokenSubject, type InferInput } from '../domain/inference.ts';
import { inferAnswer, registerTestNode, startTestEdge, type TestEdge } from '../test/edge.ts';
import { stack, unique, workflowBundle } from '../test/helpers.ts';
import { EdgeError, SessionKeeper } from '../workers/node/edge-client.ts';
import { inferenceWorkflow } from '../workflows/inference.ts';
import { sessionMetadataKey } from './protocol.ts';

let mongo: MongoHandle;
let edge: TestEdge;

beforeAll(async () => {
  mongo = await connectMongo(stack().mongodbUri, unique('edge-sessions'));
  edge = await startTestEdge({ db: mongo.db, controlTaskQueue: unique('actors') });
});

afterAll(async () => {
  await edge?.stop();
  await mongo?.db.dropDatabase().catch(() => {});
  await mongo?.[Symbol.asyncDispose]();
});

const registeredNode = () => registerTestNode(edge.address);

describe('edge sessions', () => {
  it('keep a node serving across expiries: the node renews its session before it runs out', async () => {
    const { account, client, info, nodeId } = await registeredNode();
    let connection: NativeConnection | undefined;
    let renewals = 0;
    const keeper = new SessionKeeper(
      client,
      () => client.openSession(account, info, nodeId, 2, 3), // 3 s sessions: renewed every 2 s
      async (token) => {
        renewals++;
        await connection!.setMetadata({ [sessionMetadataKey]: token });
      },
      () => {},
    );
    connection = await NativeConnection.connect({ address: edge.address, metadata: { [sessionMetadataKey]: await keeper.start() } });
    const node = await Worker.create({ connection, namespace: info.namespace, taskQueue: `node.${nodeId}`, activities: { infer: async (input: InferInput) => inferAnswer(input, nodeId) } });
    const controlQueue = unique('control');
    const control = await Worker.create({ connection: await connectWorker({ address: stack().temporalAddress, namespace: stack().temporalNamespace }), taskQueue: controlQueue, workflowBundle: await workflowBundle() });
    await using temporal = await connectTemporalClient({ address: stack().temporalAddress, namespace: stack().temporalNamespace });
    const ask = () => {
      const requestId = unique('r');
      const input: InferInput = { requestId, modelId: 'gitblock-tiny', prompt: 'hi', sampling: { temperature: 0, maxTokens: 4 }, subject: tokenSubject(requestId) };
      return temporal.workflow.execute(inferenceWorkflow, { taskQueue: controlQueue, workflowId: `req-${requestId}`, args: [input, [nodeId]] });
    };
    try {
      await Promise.all([
        node.runUntil(
          control.runUntil(async () => {
            expect((await ask()).result.nodeId).toBe(nodeId);
            // Three session lifetimes later, the worker's polls still carry a live session.
            await new Promise((r) => setTimeout(r, 9_000));
            const later = await ask();
            expect(later.result.nodeId).toBe(nodeId);
            expect(later.attempts).toEqual([{ taskQueue: `node.${nodeId}`, outcome: 'ok' }]);
          }),
        ),
      ]);
      expect(renewals).toBeGreaterThanOrEqual(3);
    } finally {
      keeper.stop();
      client.close();
      await connection.close();
    }
  });

  it('refuses calls with an expired session', async () => {
    const { account, client, info, nodeId } = await registeredNode();
    await client.openSession(account, info, nodeId, 2, 1);
    await new Promise((r) => setTimeout(r, 1_500));
    const refused = await client.offline().catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(EdgeError);
    expect((refused as EdgeError).grpcCode).toBe(grpc.status.UNAUTHENTICATED);
    expect((refused as EdgeError).message).toMatch(/expired/);
    client.close();
  });
});
