/**
 * Proves the wiring of the whole stack: a workflow on the real Temporal dev server runs an
 * activity that generates tokens with node-llama-cpp from the fixture model, writes MongoDB,
 * publishes on NATS, and reads anvil's block number through viem.
 */
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { createSmokeActivities } from '../activities/smoke.ts';
import { chainClient } from '../connections/chain.ts';
import { connectMongo, type MongoHandle } from '../connections/mongo.ts';
import { connectNats } from '../connections/nats.ts';
import { connectTemporalClient, connectWorker } from '../connections/temporal.ts';
import { smokeWorkflow } from '../workflows/smoke.ts';
import { stack, unique, workflowBundle } from './helpers.ts';
import type { NatsConnection } from '@nats-io/transport-node';
import { store } from '../store/index.ts';

describe('the local stack, end to end', () => {
  let mongo: MongoHandle;
  let nats: NatsConnection;

  beforeAll(async () => {
    mongo = await connectMongo(stack().mongodbUri, unique('smoke'));
    nats = await connectNats(stack().natsUrl, 'smoke-test');
  });
  afterAll(async () => {
    await mongo.db.dropDatabase();
    await mongo[Symbol.asyncDispose]();
    await nats.close();
  });

  it('runs a workflow whose activity generates tokens, writes MongoDB, publishes on NATS and reads the chain', async () => {
    const taskQueue = unique('smoke');
    const subject = `smoke.${taskQueue}`;
    const received = nats.subscribe(subject, { max: 1 });
    const chain = chainClient(stack().rpcUrl);

    await using client = await connectTemporalClient({ address: stack().temporalAddress, namespace: stack().temporalNamespace });
    const worker = await Worker.create({
      connection: await connectWorker({ address: stack().temporalAddress, namespace: stack().temporalNamespace }),
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: createSmokeActivities({ db: mongo.db, nats, chain, modelPath: inject('fixtureModelPath'), natsSubject: subject }),
    });

    const report = await worker.runUntil(
      client.workflow.execute(smokeWorkflow, { taskQueue, workflowId: unique('smoke'), args: [{ prompt: 'Hello', maxTokens: 8 }] }),
    );

    expect(report.tokens).toBeGreaterThan(0);
    expect(report.text.length).toBeGreaterThan(0);
    const stored = await store(mongo.db).smoke.findOne({ text: report.text });
    expect(stored?._id.toHexString()).toBe(report.mongoId);
    for await (const msg of received) expect(msg.json<{ tokens: number }>().tokens).toBe(report.tokens);
    expect(BigInt(report.blockNumber)).toBe(await chain.getBlockNumber());
  });
});
