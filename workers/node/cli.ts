/**
 * The `gitblock-node` command. Each subcommand is registered here and implemented in its own
 * module; errors print as one line with the fix, and exit non-zero.
 */
import { availableParallelism } from 'node:os';
import { Command, Option } from 'commander';
import { loadLocalConfig as loadConfig } from '../../config/env.ts';
import { listModels } from '../../models/catalog.ts';
import { gpuChoices } from './gpu.ts';
import type { StartFlags } from './options.ts';
import { modelsCommand } from './commands/models.ts';
import { operatorActionCommand, type OperatorActionFlags } from './commands/operator-action.ts';
import { rewardsClaimCommand, rewardsCommand, type RewardsFlags } from './commands/rewards.ts';
import { startCommand } from './commands/start.ts';
import { statusCommand, type StatusFlags } from './commands/status.ts';

// Output piped into a reader that stops early (`gitblock-node models | head`) is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

function fail(err: unknown): never {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`gitblock-node: ${message}\n`);
  process.exit(1);
}

const gatewayHelp = "the gateway (default GITBLOCK_GATEWAY_URL, else this checkout's running npm start, else http://127.0.0.1:GATEWAY_PORT, 8080)";

const program = new Command('gitblock-node')
  .description('Run a GitBlock node: serve open models with llama.cpp and earn GBT')
  .version('0.1.0')
  // One line per error: commander's suggestion ("Did you mean ...?") joins the message.
  .configureOutput({ outputError: (text, write) => write(`${text.trim().replace(/\n+/g, ' ')}\n`) })
  .showSuggestionAfterError(true);

program
  .command('start')
  .description('join the network and serve models')
  .option('--models <ids>', `comma-separated model ids (${listModels().map((m) => m.id).join(', ')})`)
  .addOption(new Option('--gpu <backend>', 'compute backend').choices(gpuChoices))
  .option('--edge <host:port>', "the network's edge: the one address this node talks to (default 127.0.0.1:7443)")
  .option('--edge-ca <file>', "PEM of the CA that signed the edge's TLS certificate (default: the system's roots)")
  .option('--edge-plaintext', 'no TLS to an edge on another machine (a private network you trust)')
  .option('--max-parallel <n>', 'requests served at once (default 4)')
  .option('--model-dir <dir>', 'where model files are cached')
  .option('--model-file <id=path...>', "use your own GGUF for a model id (repeatable)")
  .option('--context-size <tokens>', 'tokens per request (prompt + answer); default: the model’s trained context')
  .option('--threads <n>', 'CPU threads for inference (default: cores - 1)')
  .option('--max-memory <size>', 'cap on memory used for models, e.g. 6GiB')
  .option('--key-file <path>', 'operator key file (created on first start)')
  .option('--node-id <id>', 'this node’s id (default: generated once and kept)')
  .option('--config <file>', 'JSON file with any of these settings')
  .option('--shutdown-grace <seconds>', 'how long shutdown waits for in-flight requests (default 30)')
  .option('--offline', 'never download: use cached or given files only')
  .action((flags: StartFlags) => startCommand(flags, loadConfig(), availableParallelism()).catch(fail));

program
  .command('status')
  .description("this operator's nodes as the network sees them: registered operator, state, liveness")
  .option('--gateway <url>', gatewayHelp)
  .option('--key-file <path>', 'operator key file')
  .option('--node-id <id>', 'show this node, whoever operates it')
  .option('--json', 'print JSON')
  .action((flags: StatusFlags) => statusCommand(flags, loadConfig()).catch(fail));

program
  .command('models')
  .description('the model catalog, marking which models fit this machine')
  .addOption(new Option('--gpu <backend>', 'compute backend').choices(gpuChoices).default('auto'))
  .option('--max-parallel <n>', 'requests at once, as for start (default 4)')
  .option('--json', 'print JSON')
  .action((flags: Parameters<typeof modelsCommand>[0]) => modelsCommand(flags).catch(fail));

const rewards = program
  .command('rewards')
  .description("this operator's GBT: accrued, settled and claimable")
  .option('--gateway <url>', gatewayHelp)
  .option('--key-file <path>', 'operator key file')
  .option('--json', 'print JSON')
  .action((flags: RewardsFlags) => rewardsCommand(flags, loadConfig()).catch(fail));

rewards
  .command('claim')
  .description('claim every claimable epoch on chain with the operator key (pays the gas)')
  .option('--gateway <url>', gatewayHelp)
  .option('--key-file <path>', 'operator key file')
  .option('--rpc <url>', 'Ethereum JSON-RPC endpoint')
  // --gateway/--key-file may come before or after `claim`: merge them with the parent's.
  .action((_flags, command: Command) => rewardsClaimCommand(command.optsWithGlobals(), loadConfig()).catch(fail));

program
  .command('reinstate')
  .description('ask the network to lift a node’s suspension (signed with the operator key)')
  .argument('<nodeId>', 'the node to reinstate')
  .option('--gateway <url>', gatewayHelp)
  .option('--key-file <path>', 'operator key file')
  .action((nodeId: string, flags: OperatorActionFlags) => operatorActionCommand('reinstate', nodeId, flags, loadConfig()).catch(fail));

program
  .command('retire')
  .description('take a node out of the network for good (signed with the operator key)')
  .argument('<nodeId>', 'the node to retire')
  .option('--gateway <url>', gatewayHelp)
  .option('--key-file <path>', 'operator key file')
  .action((nodeId: string, flags: OperatorActionFlags) => operatorActionCommand('retire', nodeId, flags, loadConfig()).catch(fail));

program.parseAsync().catch(fail);
