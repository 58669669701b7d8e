/**
 * An edge for a test file, in this process, on the test stack: its own port, this file's
 * database (where registrations are checked) and control queue (where node actors run).
 */
import type { Db } from 'mongodb';
import { chainClient } from '../connections/chain.ts';
import { connectNats } from '../connections/nats.ts';
import { connectTemporalClient } from '../connections/temporal.ts';
import { startEdge, type Edge } from '../edge/server.ts';
import { MongoNonceStore } from '../gateway/registration/mongo-nonces.ts';
import { stack } from './helpers.ts';

export interface TestEdge extends Edge {
  stop(): Promise<void>;
}

export async function startTestEdge(options: { db: Db; controlTaskQueue: string; audience?: string }): Promise<TestEdge> {
  const s = stack();
  const temporal = { address: s.temporalAddress, namespace: s.temporalNamespace };
  const temporalClient = await connectTemporalClient(temporal);
  const nc = await connectNats(s.natsUrl, 'test-edge');
  const nonces = new MongoNonceStore(options.db);
  await nonces.ensureIndexes();
  const edge = await startEdge({
    listen: '127.0.0.1:0',
    temporal,
    temporalClient,
    db: options.db,
    nc,
    nonces,
    chainId: await chainClient(s.rpcUrl).getChainId(),
    audience: options.audience ?? 'gitblock-edge',
    controlTaskQueue: options.controlTaskQueue,
    log: (line) => console.error(line),
  });
  return {
    ...edge,
    async stop() {
      await edge.close();
      await nc.close();
      await temporalClient[Symbol.asyncDispose]();
    },
  };
}
