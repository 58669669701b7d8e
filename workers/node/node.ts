/**
 * `gitblock-node start`: join the network with this machine's GPU (or CPU).
 * identity → compute → model files → fit check → load → register → serve → heartbeat,
 * and on SIGINT/SIGTERM: stop polling, finish in-flight work within the grace period, go
 * offline, exit 0. A second signal exits at once.
 */
import { Runtime, DefaultLogger, NativeConnection } from '@temporalio/worker';
import { getModel } from '../../models/catalog.ts';
import type { Heartbeat } from '../../domain/heartbeat.ts';
import { sessionMetadataKey, type NodeReport } from '../../edge/protocol.ts';
import type { Llama } from 'node-llama-cpp';
import type { InferenceEngine } from '../../domain/engine.ts';
import { ModelEngine } from './engine.ts';
import { describeMisfit, ModelDoesNotFitError, planFit, type FitPlan } from './fit.ts';
import { detectCompute, memoryState, type ComputeInfo } from './gpu.ts';
import { readFileSync } from 'node:fs';
import { EdgeClient, edgeTransport, nativeTls, SessionKeeper } from './edge-client.ts';
import { HeartbeatPublisher } from './heartbeat.ts';
import { loadOrCreateNodeId, loadOrCreateOperatorKey, signRegistration } from './identity.ts';
import { printProgressTo, resolveModelFile } from './model-files.ts';
import type { NodeOptions } from './options.ts';
import { NodeServer } from './serve.ts';

export const NODE_VERSION = '0.1.0';

export interface RunningNode {
  nodeId: string;
  operator: string;
  compute: ComputeInfo;
  engines: Map<string, ModelEngine>;
  server: NodeServer;
  stop(): Promise<void>;
}

type Log = (line: string) => void;

/** The engines a node's activities run on, and what to release with them. */
export interface ServedEngines {
  engines: ReadonlyMap<string, InferenceEngine>;
  dispose(): Promise<void>;
}

/** Puts something between the loaded engines and the activities (tests: deliberate faults). */
export type EngineWrapper = (
  engines: ReadonlyMap<string, ModelEngine>,
  context: { llama: Llama; modelDir: string; maxParallel: number; threads: number; log: Log },
) => Promise<ServedEngines>;

let engineWrapper: EngineWrapper | undefined;

/**
 * Serves every node this process starts through `wrapper`. Only the test entry of gitblock-node
 * (test/faulty-node.ts) calls it, before the CLI runs; a real node serves its engines as loaded.
 */
export function serveEnginesThrough(wrapper: EngineWrapper): void {
  engineWrapper = wrapper;
}

/** Fits every model together: they share the same memory. */
async function checkFit(compute: ComputeInfo, models: { modelId: string; path: string }[], options: NodeOptions): Promise<FitPlan[]> {
  const available = Math.min(compute.freeMemoryBytes, options.maxMemory ?? Infinity);
  const plans: FitPlan[] = [];
  let left = available;
  for (const m of models) {
    // The catalog's default context, not the model's trained one: 4 sequences of a 128k-token
    // context need more memory than most GPUs have, for prompts that rarely come.
    const contextSize = options.contextSize ?? getModel(m.modelId).defaultContextLength;
    const plan = await planFit(compute.llama, { ...m, contextSize, sequences: options.maxParallel }, left);
    plans.push(plan);
    left -= plan.totalBytes;
  }
  const misfits = plans.filter((p) => !p.fits);
  if (misfits.length) throw new ModelDoesNotFitError(misfits);
  return plans;
}

/** Each model's file: the local one given, else the catalog's, downloaded (and checked) once. */
async function resolveFiles(catalog: ReturnType<typeof getModel>[], options: NodeOptions): Promise<{ modelId: string; path: string }[]> {
  const files = [];
  for (const model of catalog) {
    const localPath = options.modelFiles[model.id];
    const file = await resolveModelFile(model, {
      modelDir: options.modelDir,
      offline: options.offline,
      onProgress: printProgressTo(process.stderr, model.id),
      ...(localPath ? { localPath } : {}),
    });
    files.push({ modelId: model.id, path: file.path });
  }
  return files;
}

/** Loads each model with the context its fit plan chose, into `engines` (so a failure can dispose what loaded). */
async function loadEngines(compute: ComputeInfo, files: { modelId: string; path: string }[], plans: FitPlan[], options: NodeOptions, engines: Map<string, ModelEngine>, log: Log): Promise<void> {
  for (const [i, file] of files.entries()) {
    const engine = await ModelEngine.load(compute.llama, {
      modelId: file.modelId,
      modelPath: file.path,
      contextSize: plans[i]!.contextSize,
      sequences: options.maxParallel,
      threads: compute.backend === 'cpu' ? options.threads : 0,
    });
    engines.set(file.modelId, engine);
    log(`Loaded ${file.modelId}: ${engine.sequences} × ${engine.contextSize} tokens, sha256 ${engine.modelHash.slice(0, 12)}…`);
  }
}

/**
 * The edge is this node's one way into the network: it says which chain registrations are
 * signed for, takes the signed registration, and opens the signed session every call carries.
 */
async function register(edge: EdgeClient, account: Parameters<typeof signRegistration>[0], nodeId: string, compute: ComputeInfo, engines: Map<string, ModelEngine>, options: NodeOptions, log: Log) {
  const info = await edge.info();
  const body = await signRegistration(
    account,
    {
      nodeId,
      models: [...engines.keys()],
      modelHashes: [...engines.values()].map((e) => `0x${e.modelHash}` as const),
      gpu: compute.backend === 'cpu' ? 'cpu' : `${compute.backend}: ${compute.devices.join(', ')}`,
      version: NODE_VERSION,
    },
    info.chainId,
  );
  const registered = await edge.register(body);
  log(`Registered through the edge ${options.edge} as ${registered.nodeId} (${registered.status}); rewards go to ${registered.operator}`);
  return info;
}

/** What the node says of itself; the edge fills in its id, operator, load and speed. */
async function reportOf(compute: ComputeInfo, engines: Map<string, ModelEngine>, options: NodeOptions, status: Heartbeat['status']): Promise<NodeReport> {
  return {
    version: NODE_VERSION,
    status,
    gpu: { backend: compute.backend, devices: compute.devices, memoryBytes: compute.totalMemoryBytes },
    models: [...engines.values()].map((e) => ({ id: e.modelId, hash: e.modelHash, contextSize: e.contextSize, slots: e.sequences })),
    maxParallel: options.maxParallel,
    freeMemoryBytes: (await memoryState(compute.llama)).free,
  };
}

export async function startNode(options: NodeOptions, log: Log = console.log): Promise<RunningNode> {
  // The node handles its own signals: it must drain in-flight requests before exiting.
  Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });

  const catalog = options.models.map((id) => getModel(id));
  const key = await loadOrCreateOperatorKey(options.keyFile);
  if (key.created) log(`Created operator key ${key.path} (keep it safe: rewards are paid to ${key.account.address})`);
  const nodeId = loadOrCreateNodeId(options.home, options.nodeId);

  const compute = await detectCompute(options.gpu);
  log(`Compute: ${compute.backend}${compute.devices.length ? ` (${compute.devices.join(', ')})` : ''}, ${(compute.freeMemoryBytes / 2 ** 30).toFixed(1)} GiB free`);

  const files = await resolveFiles(catalog, options);
  const plans = await checkFit(compute, files, options);

  const engines = new Map<string, ModelEngine>();
  const transport = edgeTransport(options.edge, { ca: options.edgeCa ? readEdgeCa(options.edgeCa) : undefined, plaintext: options.edgePlaintext });
  if (!transport.tls && options.edgePlaintext) log(`Warning: talking to the edge ${options.edge} without TLS (--edge-plaintext): anyone on the way can read prompts and the session.`);
  const edge = new EdgeClient(options.edge, transport);
  let keeper: SessionKeeper | undefined;
  let connection: NativeConnection | undefined;
  let served: ServedEngines | undefined;
  try {
    await loadEngines(compute, files, plans, options, engines, log);
    const info = await register(edge, key.account, nodeId, compute, engines, options, log);

    keeper = new SessionKeeper(
      edge,
      () => edge.openSession(key.account, info, nodeId, options.maxParallel),
      async (token) => {
        await connection?.setMetadata({ [sessionMetadataKey]: token });
      },
      log,
    );
    const token = await keeper.start();
    connection = await NativeConnection.connect({ address: options.edge, tls: nativeTls(transport), metadata: { [sessionMetadataKey]: token } });

    served = engineWrapper
      ? await engineWrapper(engines, { llama: compute.llama, modelDir: options.modelDir, maxParallel: options.maxParallel, threads: options.threads, log })
      : { engines, dispose: async () => {} };
    const server = await NodeServer.start({
      nodeId,
      connection,
      namespace: info.namespace,
      streams: edge.streams(),
      engines: served.engines,
      maxParallel: options.maxParallel,
      shutdownGraceMs: options.shutdownGraceMs,
    });

    let status: Heartbeat['status'] = 'serving';
    const heartbeat = new HeartbeatPublisher(edge, () => reportOf(compute, engines, options, status), log);
    await heartbeat.start();
    const session = keeper;
    const wrapped = served;
    log(`Node ${nodeId} serving ${[...engines.keys()].join(', ')} through the edge ${options.edge}, up to ${options.maxParallel} requests at once`);

    return {
      nodeId,
      operator: key.account.address,
      compute,
      engines,
      server,
      async stop() {
        status = 'draining';
        await heartbeat.beat();
        await server.shutdown();
        await heartbeat.stop();
        session.stop();
        edge.close();
        await wrapped.dispose();
        for (const engine of engines.values()) await engine[Symbol.asyncDispose]();
        await compute.llama.dispose();
      },
    };
  } catch (err) {
    await served?.dispose().catch(() => {});
    for (const engine of engines.values()) await engine[Symbol.asyncDispose]().catch(() => {});
    keeper?.stop();
    await connection?.close().catch(() => {});
    edge.close();
    throw err;
  }
}

function readEdgeCa(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`--edge-ca ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
  }
}

export { describeMisfit };
