/**
 * The gateway as its own process (`npm run gateway`, `tsx gateway/main.ts`), for production
 * where Temporal, MongoDB, NATS and the chain are given by the environment (config/env.ts).
 * `npm start` runs the gateway in-process instead. SIGINT/SIGTERM close it and exit 0.
 */
import { loadConfig } from '../config/env.ts';
import { runService } from '../stack/console.ts';
import { startGateway } from './server.ts';

runService('gitblock-gateway', async () => {
  const config = loadConfig();
  if (!config.MONGODB_URI) throw new Error('MONGODB_URI is not set: the gateway needs the network’s MongoDB (npm start runs a local one)');
  const gateway = await startGateway({ config, mongodbUri: config.MONGODB_URI, logger: true });
  console.log(`gateway listening on ${gateway.url}`);
  return gateway;
});
