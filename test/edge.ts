/**
 * An edge for a test file, in this process, on the test stack: its own port, this file's
 * database (where registrations are checked) and control queue (where node actors run).
 */
import { NativeConnection } from '@temporalio/worker';
import type { Db } from 'mongodb';
import type { InferInput, InferResult } from '../domain/inference.ts';
import { sessionMetadataKey } from '../edge/protocol.ts';
import { chainClient } from '../connections/chain.ts';
import { connectNats } from '../connections/nats.ts';
import { connectTemporalClient } from '../connections/temporal.ts';
import { startEdge, type Edge } from '../edge/server.ts';
import { MongoNonceStore } from '../gateway/registration/mongo-nonces.ts';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { EdgeClient, type EdgeTransport } from '../workers/node/edge-client.ts';
import { signRegistration } from '../workers/node/identity.ts';
import { stack, unique } from './helpers.ts';

export interface TestEdge extends Edge {
  stop(): Promise<void>;
}

export async function startTestEdge(options: { db: Db; controlTaskQueue: string; audience?: string; tls?: { cert: Buffer; key: Buffer }; temporalAddress?: string }): Promise<TestEdge> {
  const s = stack();
  const temporal = { address: options.temporalAddress ?? s.temporalAddress, namespace: s.temporalNamespace };
  const temporalClient = await connectTemporalClient({ address: s.temporalAddress, namespace: s.temporalNamespace });
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
    tls: options.tls,
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

/** A fresh operator with a node id registered through the edge: what an operator's node does first. */
export async function registerTestNode(address: string, transport: EdgeTransport = { tls: false }, models = ['gitblock-tiny']) {
  const account = privateKeyToAccount(generatePrivateKey());
  const client = new EdgeClient(address, transport);
  const info = await client.info();
  const nodeId = unique('node');
  const modelHashes = models.map(() => `0x${'ab'.repeat(32)}` as const);
  await client.register(await signRegistration(account, { nodeId, models, modelHashes, gpu: 'cpu', version: 'test' }, info.chainId));
  return { account, client, info, nodeId };
}

/** A worker connection through the edge, carrying a fresh session of a registered node. */
export async function connectThroughEdge(node: Awaited<ReturnType<typeof registerTestNode>>, address: string, lifetimeSeconds?: number): Promise<NativeConnection> {
  const { token } = await node.client.openSession(node.account, node.info, node.nodeId, 2, lifetimeSeconds);
  return NativeConnection.connect({ address, metadata: { [sessionMetadataKey]: token } });
}

/** A well-formed `infer` result, as an honest node would return it, for fake nodes' activities. */
export function inferAnswer(input: InferInput, nodeId: string): InferResult {
  return {
    requestId: input.requestId,
    nodeId,
    modelId: input.modelId,
    modelHash: 'ab'.repeat(32),
    text: 'ok',
    tokens: [1],
    finishReason: 'stop',
    usage: { promptTokens: 1, completionTokens: 1, totalTokens: 2 },
    continuedFromTokens: 0,
    timings: { timeToFirstTokenMs: 1, tokensPerSecond: 1, totalMs: 1 },
  };
}
