/**
 * `npm start`: the whole local network in one command: the stack, the control worker, the
 * gateway, and one GPU node serving the default small model. Prints the API address, a
 * ready-to-paste curl with a fresh key, and the Temporal UI. Ctrl-C stops everything.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/env.ts';
import { localNetworkFile, removeLocalNetwork, writeLocalNetwork } from '../config/local-network.ts';
import { connectMongo } from '../connections/mongo.ts';
import { connectNats } from '../connections/nats.ts';
import { startGateway } from '../gateway/server.ts';
import { printEndpoints, untilSignal } from '../stack/console.ts';
import { bindPreferring } from '../stack/ports.ts';
import { startStack } from '../stack/stack.ts';
import { startControlWorker } from '../workers/control.ts';
import { startEdgeFromConfig } from '../edge/server.ts';
import { ensureSettlementSchedule } from '../workers/settlement-schedule.ts';
import { settlementChainFromConfig } from '../activities/settlement-chain.ts';
import { connectTemporalClient } from '../connections/temporal.ts';
import { ensureLocalDeployment } from './local-deployment.ts';
import { describeEpochLength, localEpochSchedule, parseEpochLength } from './local-epochs.ts';
import { LocalFaucet } from './local-faucet.ts';
import { LocalNode, localNodeArgs } from './local-node.ts';
import { epochAt, epochWindow, type EpochSchedule } from '../domain/emission.ts';
import { settlementDelaySeconds } from '../workers/settlement-schedule.ts';
import { Runtime } from '@temporalio/worker';
import { oneLineLogger } from '../workers/one-line-log.ts';

const nodeBin = fileURLToPath(new URL('../bin/gitblock-node.mjs', import.meta.url));

/** `npm start [-- --epoch 2m]`. */
function parseStartArgs(args: string[]): { epochSeconds?: number } {
  const { values } = parseArgs({ args, options: { epoch: { type: 'string' } }, strict: true, allowPositionals: false });
  return values.epoch === undefined ? {} : { epochSeconds: parseEpochLength(values.epoch) };
}

/** One line: how long epochs are, when the current one ends and when it settles. */
function describeEpochs(schedule: EpochSchedule): string {
  const now = Date.now();
  const current = epochAt(now, schedule);
  const delay = settlementDelaySeconds(schedule.epochSeconds);
  const end = new Date(epochWindow(Math.max(current, 0), schedule).endMs).toISOString().replace('.000Z', 'Z');
  return `Epochs of ${describeEpochLength(schedule.epochSeconds)}: epoch ${current} ends at ${end}, and each settles ${describeEpochLength(delay)} after its end.`;
}

async function untilModelListed(gatewayUrl: string, model: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const listed = (await (await fetch(`${gatewayUrl}/v1/models`)).json().catch(() => ({}))) as { data?: { id: string }[] };
    if (listed.data?.some((m) => m.id === model)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  console.log(`(the gateway does not list ${model} yet; requests may answer 503 until it sees the node's heartbeat)`);
}

/** What `npm start` prints once the network is up: the API, a curl to paste, and where to look. */
function welcome(w: { gatewayUrl: string; key: string; model: string; compute: string | undefined; edge: string; temporalUiUrl: string; schedule: EpochSchedule; dataDir: string }): string {
  return [
    '',
    `GitBlock network is up. OpenAI-compatible API: ${w.gatewayUrl}/v1   (OpenAPI: ${w.gatewayUrl}/openapi.json)`,
    '',
    'Try it:',
    `  curl -s ${w.gatewayUrl}/v1/chat/completions \\`,
    `    -H "Authorization: Bearer ${w.key}" -H "Content-Type: application/json" \\`,
    `    -d '{"model":"${w.model}","messages":[{"role":"user","content":"What is the capital of France?"}],"max_tokens":64}'`,
    '',
    `Node local-node-1 serves ${w.model} on ${w.compute ?? 'the compute it found'}.`,
    `More nodes join through the edge: npx gitblock-node start --models ${w.model} --edge ${w.edge} --node-id <id>`,
    `Every request is a workflow req-<id> in the Temporal UI: ${w.temporalUiUrl}`,
    describeEpochs(w.schedule),
    `This machine's operator: npx gitblock-node status; its GBT: npx gitblock-node rewards, then npx gitblock-node rewards claim; settle by hand: npm run settle -- --last`,
    `(this checkout's commands reach this network through ${localNetworkFile(w.dataDir)} while it runs)`,
    'Press Ctrl-C to stop.',
  ].join('\n');
}

async function main() {
  Runtime.install({ logger: oneLineLogger('WARN') });
  const args = parseStartArgs(process.argv.slice(2));
  const base = loadConfig();
  // Listening from the start: a Ctrl-C during startup stops what started instead of orphaning it.
  const signalled = untilSignal();
  const stack = await startStack({ dataDir: base.GITBLOCK_DATA_DIR, ports: 'default', mongodbUri: base.MONGODB_URI });
  const stops: (() => Promise<void>)[] = [() => stack.stop()];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((err: unknown) => console.error(`while stopping: ${(err as Error).message}`));
  };
  stack.onServiceFailure((error) => {
    console.error(`\n${error.message}\nStopping: the network cannot run without ${error.service}.`);
    // A failure callback cannot await: stop what runs, then exit whether stopping worked or not.
    void stopAll().finally(() => process.exit(1));
  });
  try {
    const e = stack.endpoints;
    // The endpoints of the stack just started, overriding defaults for every component.
    // The rewards contracts on the local anvil (deployed once, then reused) and their settler.
    const local = base.GITBLOCK_DEPLOYMENT_FILE ? undefined : await ensureLocalDeployment(e.rpcUrl, base.GITBLOCK_DATA_DIR);
    const env = {
      TEMPORAL_ADDRESS: e.temporalAddress,
      NATS_URL: e.natsUrl,
      CHAIN_RPC_URL: e.rpcUrl,
      MONGODB_URI: e.mongodbUri,
      GITBLOCK_DEPLOYMENT_FILE: base.GITBLOCK_DEPLOYMENT_FILE ?? local?.deploymentFile,
      GITBLOCK_SETTLER_KEY_FILE: base.GITBLOCK_SETTLER_KEY_FILE ?? local?.settlerKeyFile,
    };
    const config = loadConfig(env);
    const chain = await settlementChainFromConfig(config);
    console.log(`GBT contracts ${local?.created ? 'deployed' : 'found'}: ${config.GITBLOCK_DEPLOYMENT_FILE}`);

    const mongo = await connectMongo(e.mongodbUri, config.MONGODB_DB);
    const nc = await connectNats(config, 'gitblock-control');
    stops.push(async () => {
      await nc.close();
      await mongo[Symbol.asyncDispose]();
    });
    const schedule = await localEpochSchedule({ dataDir: base.GITBLOCK_DATA_DIR, db: mongo.db, config, epochSeconds: args.epochSeconds });
    // Operators who register here get gas money, so their claims go through (anvil only).
    const faucet = await LocalFaucet.start({ db: mongo.db, rpcUrl: e.rpcUrl, say: (line) => console.log(line) });
    stops.push(() => faucet.stop());
    const temporalTarget = { address: e.temporalAddress, namespace: e.temporalNamespace };
    const control = await startControlWorker({ temporal: temporalTarget, db: mongo.db, nc, seedVerifiers: config.GITBLOCK_SEED_VERIFIERS, settlement: { schedule, chain } });
    stops.push(() => control.shutdown());
    // The settlement Schedule, created or brought up to date.
    const scheduler = await connectTemporalClient(temporalTarget);
    await ensureSettlementSchedule(scheduler, { schedule }).finally(() => scheduler[Symbol.asyncDispose]());

    // The preferred ports, bound at once, else ports the OS picks: never checked first, since
    // another network starting on this machine could take a port between check and bind.
    // On the control worker's connection: request workflows start eagerly on it.
    const gateway = await startGateway({ config, mongodbUri: e.mongodbUri, portFallback: true, say: (line) => console.log(line), controlConnection: control.connection });
    stops.push(() => gateway.close());

    // The one endpoint nodes reach: the node below gets its address and nothing of Temporal, NATS or MongoDB.
    const edge = await bindPreferring(
      config.EDGE_PORT,
      (port) => startEdgeFromConfig({ ...config, EDGE_PORT: port }, { mongodbUri: e.mongodbUri, log: (line) => console.error(`  [edge] ${line}`) }),
      (line) => console.log(`edge: ${line}`),
    );
    stops.push(() => edge.stop());

    const model = config.GITBLOCK_START_MODEL;
    console.log(`Starting a node with ${model}, on a GPU if it finds one, else the CPU (first run fetches the model)...`);
    const nodeEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(TEMPORAL_|NATS_|MONGODB_)/.test(k)));
    const nodeArgs = localNodeArgs({ model, edge: edge.address, nodeId: 'local-node-1', contextSizeChosen: config.GITBLOCK_NODE_CONTEXT_SIZE !== undefined });
    const node = await LocalNode.start({ bin: nodeBin, env: nodeEnv, args: nodeArgs, say: (line) => console.log(line) });
    stops.push(() => node.stop());
    // "Up" means the printed curl works: the gateway has seen the node's registration and heartbeat.
    await untilModelListed(gateway.url, model, 30_000);

    const issued = (await (await fetch(`${gateway.url}/v1/keys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ label: 'npm start' }) })).json()) as { key: string };
    printEndpoints(stack);
    // This checkout's commands (gitblock-node, npm run settle) find this network from here.
    const network = { pid: process.pid, gatewayUrl: gateway.url, edge: edge.address, temporalAddress: e.temporalAddress, temporalNamespace: e.temporalNamespace, rpcUrl: e.rpcUrl, ...schedule };
    writeLocalNetwork(base.GITBLOCK_DATA_DIR, network);
    stops.push(async () => removeLocalNetwork(base.GITBLOCK_DATA_DIR, process.pid));
    console.log(welcome({ gatewayUrl: gateway.url, key: issued.key, model, compute: node.compute, edge: edge.address, temporalUiUrl: e.temporalUiUrl, schedule, dataDir: base.GITBLOCK_DATA_DIR }));
  } catch (err) {
    await stopAll();
    throw err;
  }
  await signalled;
  console.log('Stopping...');
  await stopAll();
  // Everything was stopped in order; a connection left by a failed bind attempt (the edge's
  // connections outlive a bind that fails) must not keep the launcher running.
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
