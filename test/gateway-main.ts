/**
 * The gateway as its own process for tests that kill it (test/service-process.ts): what
 * gateway/main.ts runs, on a test file's own control task queue (the first argument), on the
 * port GATEWAY_PORT names (0: any), with the stack and database from the environment.
 */
import { loadConfig } from '../config/env.ts';
import { startGateway } from '../gateway/server.ts';
import { runService } from '../stack/console.ts';

const [controlTaskQueue] = process.argv.slice(2);

runService('gitblock-gateway', async () => {
  const config = loadConfig();
  if (!controlTaskQueue) throw new Error('usage: tsx test/gateway-main.ts <control task queue>');
  if (!config.MONGODB_URI) throw new Error('MONGODB_URI is not set');
  const gateway = await startGateway({ config, mongodbUri: config.MONGODB_URI, controlTaskQueue });
  console.log(`gateway listening on ${gateway.url}`);
  return gateway;
});
