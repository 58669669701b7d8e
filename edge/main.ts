/**
 * The edge as its own process (`npm run edge`, `tsx edge/main.ts`): the one endpoint GPU nodes
 * reach, configured by the environment (config/env.ts). `npm start` runs it in-process instead.
 * SIGINT/SIGTERM close it and exit 0.
 */
import { loadConfig } from '../config/env.ts';
import { startEdgeFromConfig } from './server.ts';

async function main(): Promise<void> {
  const config = loadConfig();
  if (!config.MONGODB_URI) throw new Error('MONGODB_URI is not set: the edge checks registrations in the network’s MongoDB (npm start runs a local one)');
  const edge = await startEdgeFromConfig(config, { mongodbUri: config.MONGODB_URI, log: (line) => console.error(line) });
  console.log(`edge listening on ${config.EDGE_HOST}:${edge.address.split(':').pop()} (audience ${config.EDGE_AUDIENCE})`);
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(1);
    stopping = true;
    console.log(`${signal}: closing...`);
    void edge.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`gitblock-edge: close failed: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`gitblock-edge: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
