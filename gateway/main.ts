/**
 * The gateway as its own process (`npm run gateway`, `tsx gateway/main.ts`), for production
 * where Temporal, MongoDB, NATS and the chain are given by the environment (config/env.ts).
 * `npm start` runs the gateway in-process instead. SIGINT/SIGTERM close it and exit 0.
 */
import { loadConfig } from '../config/env.ts';
import { startGateway } from './server.ts';

async function main(): Promise<void> {
  const config = loadConfig();
  if (!config.MONGODB_URI) throw new Error('MONGODB_URI is not set: the gateway needs the network’s MongoDB (npm start runs a local one)');
  const gateway = await startGateway({ config, mongodbUri: config.MONGODB_URI, logger: true });
  console.log(`gateway listening on ${gateway.url}`);
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    // A second signal does not wait for the drain.
    if (stopping) process.exit(1);
    stopping = true;
    console.log(`${signal}: closing...`);
    void gateway.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`gitblock-gateway: close failed: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`gitblock-gateway: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
