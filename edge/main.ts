/**
 * The edge as its own process (`npm run edge`, `tsx edge/main.ts`): the one endpoint GPU nodes
 * reach, configured by the environment (config/env.ts). `npm start` runs it in-process instead.
 * SIGINT/SIGTERM close it and exit 0.
 */
import { loadConfig } from '../config/env.ts';
import { runService } from '../stack/console.ts';
import { startEdgeFromConfig } from './server.ts';

runService('gitblock-edge', async () => {
  const config = loadConfig();
  if (!config.MONGODB_URI) throw new Error('MONGODB_URI is not set: the edge checks registrations in the network’s MongoDB (npm start runs a local one)');
  const edge = await startEdgeFromConfig(config, { mongodbUri: config.MONGODB_URI, log: (line) => console.error(line) });
  console.log(`edge listening on ${config.EDGE_HOST}:${edge.address.split(':').pop()} (audience ${config.EDGE_AUDIENCE}${config.EDGE_TLS_CERT_FILE ? ', TLS' : ', plaintext'})`);
  return { close: () => edge.stop() };
});
