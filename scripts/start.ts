/**
 * `npm start`: the whole local network in one command. Ctrl-C stops every process it started.
 */
import { loadConfig } from '../config/env.ts';
import { printEndpoints, untilSignal } from '../stack/console.ts';
import { startStack } from '../stack/stack.ts';

async function main() {
  const config = loadConfig();
  const stack = await startStack({ dataDir: config.GITBLOCK_DATA_DIR, ports: 'default', mongodbUri: config.MONGODB_URI });
  stack.onServiceFailure((error) => {
    console.error(`\n${error.message}\nStopping: the network cannot run without ${error.service}.`);
    void stack.stop().then(() => process.exit(1));
  });
  printEndpoints(stack);
  console.log('\nPress Ctrl-C to stop.');
  await untilSignal();
  console.log('Stopping...');
  await stack.stop();
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
