/**
 * `npm run stack`: brings the local stack up, prints its endpoints, and stops every process
 * it started on Ctrl-C. `npm run stack -- install` only installs missing tools (CI uses it).
 */
import { Command, InvalidArgumentError } from 'commander';
import { loadConfig } from '../config/env.ts';
import { startStack } from './stack.ts';
import { ensureTool, type ToolName } from './tools.ts';
import { printEndpoints, untilSignal } from './console.ts';

const program = new Command('stack').description('The GitBlock local stack: Temporal, MongoDB-wire server, NATS, anvil').showHelpAfterError();

program
  .command('up', { isDefault: true })
  .description('start every service and keep it running until Ctrl-C')
  .option('--ports <mode>', "'default' (well-known ports when free) or 'random'", (v) => {
    if (v !== 'default' && v !== 'random') throw new InvalidArgumentError("use 'default' or 'random'");
    return v;
  }, 'default')
  .action(async (opts: { ports: 'default' | 'random' }) => {
    const config = loadConfig();
    const stack = await startStack({ dataDir: config.GITBLOCK_DATA_DIR, ports: opts.ports, mongodbUri: config.MONGODB_URI });
    printEndpoints(stack);
    stack.onServiceFailure((error) => {
      console.error(`\n${error.message}`);
      // A failure callback cannot await: stop what runs, then exit whether stopping worked or not.
      void stack.stop().finally(() => process.exit(1));
    });
    await untilSignal();
    console.log('Stopping the stack...');
    await stack.stop();
  });

program
  .command('install')
  .description('install the tools the stack needs, if missing')
  .action(async () => {
    for (const tool of ['temporal', 'ferretdb', 'nats-server'] as ToolName[]) console.log(`${tool}: ${await ensureTool(tool)}`);
  });

program.parseAsync().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
