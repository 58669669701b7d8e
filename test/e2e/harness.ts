/**
 * The whole network for end-to-end tests: the control worker and the gateway in this process
 * (each on this test file's own task queue and database), GPU nodes as real processes.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { FastifyInstance } from 'fastify';
import type { Address } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { expect } from 'vitest';

import { createRequestActivities } from '../../activities/requests.ts';
import { NodeStandings } from '../../activities/node-standings.ts';
import { chainClient } from '../../connections/chain.ts';
import { connectMongo, type MongoHandle } from '../../connections/mongo.ts';
import { connectNats } from '../../connections/nats.ts';
import { ensureTokenStream } from '../../connections/streams.ts';
import { connectTemporalClient } from '../../connections/temporal.ts';
import { nodeDirectoryRefreshMs } from '../../activities/routing.ts';
import { buildApp } from '../../gateway/app.ts';
import { GatewayRouter } from '../../gateway/router.ts';
import type { GatewayDeps } from '../../gateway/deps.ts';
import { startGatewayState } from '../../gateway/server.ts';
import { ApiKeys, type KeyPolicy } from '../../gateway/keys/keys.ts';
import { tokenSubject, type InferInput, type Sampling } from '../../domain/inference.ts';
import { PROBATION_REQUESTS } from '../../domain/reputation.ts';
import { workflowIds } from '../../temporal.config.ts';
import { startControlWorker, type ControlWorker } from '../../workers/control.ts';
import { inferenceWorkflow } from '../../workflows/inference.ts';
import { requestOutcomeSignal, verificationVerdictSignal } from '../../workflows/node-actor.ts';
import { spotCheckWorkflow, type SpotCheckOutcome } from '../../workflows/spot-check.ts';
import { stack, unique, workflowBundle } from '../helpers.ts';
import { startTestEdge, type TestEdge } from '../edge.ts';
import { startNodeProcess, type NodeProcess } from '../node-process.ts';
import { writeKeyFile } from '../settlement-helpers.ts';
import { store } from '../../store/index.ts';

export interface Network {
  url: string;
  app: FastifyInstance;
  /** What the gateway was built from; read per request, so a test may swap a part (its fallback provider). */
  gatewayDeps: GatewayDeps;
  mongo: MongoHandle;
  nc: NatsConnection;
  temporal: Awaited<ReturnType<typeof connectTemporalClient>>;
  control: ControlWorker;
  /** The control worker's task queue, where request and node workflows run. */
  controlTaskQueue: string;
  edge: TestEdge;
  keys: ApiKeys;
  /** The gateway's cached view of node states (what it advertises by). */
  standings: NodeStandings;
  nodes: NodeProcess[];
  startNode(name: string, extra?: string[]): Promise<NodeProcess>;
  /**
   * Starts a node that was stopped (or killed) again, as its operator would: same id, same key,
   * same flags. Resolves once the gateway has a heartbeat from the new process.
   */
  restartNode(node: NodeProcess): Promise<NodeProcess>;
  /** The operator a node registered under. */
  operatorOf(nodeId: string): Promise<string>;
  /**
   * Gives a registered node a record through its node actor, as served requests and checks
   * would: out of probation (PROBATION_REQUESTS clean requests) and `passes` passed checks;
   * resolves once the projection the router reads shows it.
   */
  establish(nodeId: string, record: { passes: number }): Promise<void>;
  /**
   * Serves one request on the given node, books its accrual, and spot-checks it; asserts that
   * no verdict came from the node's own operator.
   */
  serveAndCheck(nodeId: string, sampling: Sampling, content: string): Promise<{ outcome: SpotCheckOutcome; requestId: string }>;
  stop(): Promise<void>;
}

export interface NetworkOptions {
  /** Operators whose active nodes verify without a record of checks (GITBLOCK_SEED_VERIFIERS). */
  seedVerifiers?: readonly string[];
  /** Overrides of the gateway's dependencies (its clock, its cool-downs). */
  gateway?: Partial<GatewayDeps>;
}

/** A new operator key in a file of its own, for a node's `--key-file`. */
export function newOperatorKey(): { address: Address; keyFile: string } {
  const key = generatePrivateKey();
  return { address: privateKeyToAccount(key).address, keyFile: writeKeyFile(key, 'operator.key') };
}

export async function startNetwork(policy: KeyPolicy, options: NetworkOptions = {}): Promise<Network> {
  const s = stack();
  const target = { address: s.temporalAddress, namespace: s.temporalNamespace };
  const taskQueue = unique('control');
  const mongo = await connectMongo(s.mongodbUri, unique('e2e'));
  const nc = await connectNats(s.natsUrl, 'e2e');
  await ensureTokenStream(nc);
  const temporal = await connectTemporalClient(target);
  const control = await startControlWorker({ temporal: target, db: mongo.db, nc, taskQueue, workflowBundle: await workflowBundle(), seedVerifiers: options.seedVerifiers });
  const state = await startGatewayState(mongo.db, nc, policy);
  const { keys, registered, liveNodes, standings } = state;
  // As server.ts wires it: requests are routed at the gateway as they are admitted.
  const router = await GatewayRouter.start(mongo.db, liveNodes);
  const gatewayDeps: GatewayDeps = {
    router,
    temporal,
    nc,
    db: mongo.db,
    ...state,
    chainId: await chainClient(s.rpcUrl).getChainId(),
    chain: chainClient(s.rpcUrl),
    controlTaskQueue: taskQueue,
    keysPerHourPerAddress: 1000,
    ...options.gateway,
  };
  const app = await buildApp(gatewayDeps);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const edge = await startTestEdge({ db: mongo.db, controlTaskQueue: taskQueue });
  const nodes: NodeProcess[] = [];
  /** Ready for routing once the gateway knows the registration (made through the edge) and has a heartbeat received after `since`. */
  async function seenSince(nodeId: string, since: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      await registered.refresh();
      if ((liveNodes.get(nodeId)?.receivedAt ?? -1) >= since) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  async function operatorOf(nodeId: string): Promise<string> {
    const doc = await store(mongo.db).registrations.findOne({ _id: nodeId });
    if (!doc) throw new Error(`node ${nodeId} is not registered`);
    return doc.operator;
  }
  return {
    url,
    app,
    gatewayDeps,
    mongo,
    nc,
    temporal,
    control,
    controlTaskQueue: taskQueue,
    edge,
    keys,
    standings,
    nodes,
    async startNode(name, extra = []) {
      const node = await startNodeProcess({ nodeId: unique(name), edge: edge.address, extraArgs: extra });
      nodes.push(node);
      await seenSince(node.nodeId, 0);
      return node;
    },
    async restartNode(node) {
      await node.stop('SIGKILL');
      const since = Date.now();
      const again = await startNodeProcess(node.options);
      const at = nodes.indexOf(node);
      if (at >= 0) nodes[at] = again;
      else nodes.push(again);
      await seenSince(again.nodeId, since);
      return again;
    },
    operatorOf,
    async establish(nodeId, { passes }) {
      const actor = temporal.workflow.getHandle(workflowIds.node(nodeId));
      const tag = unique('establish');
      for (let i = 0; i < PROBATION_REQUESTS; i++) await actor.signal(requestOutcomeSignal, { requestId: `${tag}-r${i}`, ok: true, at: Date.now() });
      for (let i = 0; i < passes; i++) await actor.signal(verificationVerdictSignal, { requestId: `${tag}-v${i}`, passed: true, at: Date.now() });
      const deadline = Date.now() + 20_000;
      for (;;) {
        const doc = await store(mongo.db).nodes.findOne({ _id: nodeId });
        if (doc?.state === 'active' && doc.record.verificationPasses >= passes) {
          // Routing and verifier choice read the projection from the control worker's memory,
          // re-read every nodeDirectoryRefreshMs (activities/routing.ts): let it catch up.
          await new Promise((r) => setTimeout(r, 2 * nodeDirectoryRefreshMs));
          return;
        }
        if (Date.now() > deadline) throw new Error(`node ${nodeId} not projected as established in 20 s: ${JSON.stringify(doc?.state)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async serveAndCheck(nodeId, sampling, content) {
      const requestId = unique('v').replace(/-/g, '');
      const input: InferInput = { requestId, modelId: 'gitblock-tiny', messages: [{ role: 'user', content }], sampling, subject: tokenSubject(requestId) };
      const { result } = await temporal.workflow.execute(inferenceWorkflow, { taskQueue, workflowId: `req-${requestId}`, args: [input, [nodeId]] });
      await createRequestActivities({ db: mongo.db }).accrueReward({ requestId, nodeId, modelId: 'gitblock-tiny', completionTokens: result.usage.completionTokens });
      const operator = await operatorOf(nodeId);
      const outcome = await temporal.workflow.execute(spotCheckWorkflow, {
        taskQueue,
        workflowId: workflowIds.spotCheck(requestId),
        args: [{ claim: { ...input, nodeId, operator, modelHash: result.modelHash, tokens: result.tokens, finishReason: result.finishReason }, promptTokensEstimate: 64 }],
      });
      // A node never verifies its own operator's answer.
      for (const v of outcome.verdicts) expect(v.operator.toLowerCase()).not.toBe(operator.toLowerCase());
      return { outcome, requestId };
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
      await edge.stop();
      await app.close();
      liveNodes.stop();
      registered.stop();
      standings.stop();
      router.stop();
      await control.shutdown();
      await mongo.db.dropDatabase().catch(() => {});
      await mongo[Symbol.asyncDispose]();
      await nc.close();
      await temporal[Symbol.asyncDispose]();
    },
  };
}
