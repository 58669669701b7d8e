/**
 * Command line for GitBlock's contracts.
 *
 *   tsx contracts/cli.ts deploy --rpc URL (--key-file FILE | --anvil-key) \
 *     --treasury ADDR --team ADDR --vesting-cliff SECONDS --vesting-duration SECONDS \
 *     --airdrop-root HEX --settler ADDR [--vesting-start UNIX|now] [--airdrop-deadline UNIX] \
 *     [--admin ADDR] [--out FILE]
 *
 * Writes the deployment's addresses as JSON to --out (default `.data/deployment.<chainId>.json`).
 * Bad input ends with one line on stderr and exit code 2; a failed deployment with exit code 1.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BaseError, createPublicClient, getAddress, http, isAddress, zeroAddress, type Address, type Hex } from 'viem';
import {
  ANVIL_CHAIN_ID,
  ANVIL_DEFAULT_KEY,
  DeployConfigError,
  deployGitBlock,
  toDeploymentFile,
  type GitBlockDeployment,
} from './deploy.ts';
import { codedError } from '../domain/errors.ts';

const USAGE = `usage: tsx contracts/cli.ts deploy --rpc URL (--key-file FILE | --anvil-key)
  --treasury ADDR            community treasury (30%)
  --team ADDR                team vesting beneficiary (20%)
  --vesting-start UNIX|now   vesting start, unix seconds (default: now, the chain's latest block time)
  --vesting-cliff SECONDS    cliff after the start
  --vesting-duration SECONDS total vesting duration (>= cliff)
  --airdrop-root HEX         32-byte Merkle root of the (account, amount) airdrop tree
  --airdrop-deadline UNIX    last unix time airdrop claims are accepted (default: none)
  --settler ADDR             address allowed to post epoch roots
  --admin ADDR               distributor admin/pauser and airdrop owner (default: the deployer)
  --out FILE                 where to write the addresses (default: .data/deployment.<chainId>.json)
  --anvil-key                deploy with anvil's public default account 0 (chain ${ANVIL_CHAIN_ID} only)`;

/** Invalid command-line input; the message is one line, fit to print as is. */
export class UsageError extends codedError('CONTRACTS_USAGE_INVALID') {
  override readonly name = 'UsageError';
}

/** Validated `deploy` options. */
export interface DeployCommand {
  rpcUrl: string;
  /** Deployer private key, or 'anvil' for anvil's default account 0. */
  key: Hex | 'anvil';
  treasury: Address;
  team: Address;
  /** 'now' resolves to the latest block's timestamp at deploy time. */
  vestingStart: bigint | 'now';
  vestingCliff: bigint;
  vestingDuration: bigint;
  airdropRoot: Hex;
  airdropDeadline: bigint;
  settler: Address;
  admin?: Address;
  out?: string;
}

function address(flag: string, value: string | undefined): Address {
  if (value === undefined) throw new UsageError(`missing --${flag}`);
  if (!isAddress(value, { strict: false })) throw new UsageError(`--${flag}: not an address: ${value}`);
  const a = getAddress(value);
  if (a === zeroAddress) throw new UsageError(`--${flag}: the zero address is not allowed`);
  return a;
}

function seconds(flag: string, value: string | undefined): bigint {
  if (value === undefined) throw new UsageError(`missing --${flag}`);
  // Digits only: no decimals, signs, exponents or hex, so no float parsing ever happens.
  if (!/^\d{1,20}$/.test(value) || BigInt(value) > (1n << 64n) - 1n) {
    throw new UsageError(`--${flag}: expected a whole number of seconds, got ${value}`);
  }
  return BigInt(value);
}

function readKeyFile(file: string): Hex {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new UsageError(`--key-file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const key = text.startsWith('0x') ? text : `0x${text}`;
  // Never echo the file's contents: it is a secret even when malformed.
  if (!/^0x[0-9a-fA-F]{64}$/.test(key)) throw new UsageError(`--key-file: ${file} does not hold a 32-byte hex private key`);
  return key as Hex;
}

/**
 * Parses and validates `deploy`'s flags (everything after the `deploy` word).
 * @throws UsageError with a one-line message
 */
export function parseDeployArgs(args: readonly string[]): DeployCommand {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      strict: true,
      allowPositionals: false,
      options: {
        rpc: { type: 'string' },
        'key-file': { type: 'string' },
        'anvil-key': { type: 'boolean' },
        treasury: { type: 'string' },
        team: { type: 'string' },
        'vesting-start': { type: 'string' },
        'vesting-cliff': { type: 'string' },
        'vesting-duration': { type: 'string' },
        'airdrop-root': { type: 'string' },
        'airdrop-deadline': { type: 'string' },
        settler: { type: 'string' },
        admin: { type: 'string' },
        out: { type: 'string' },
      },
    }));
  } catch (err) {
    // parseArgs' messages are single sentences; keep only the first line.
    throw new UsageError((err as Error).message.split('\n')[0] ?? 'invalid arguments');
  }

  const rpc = values.rpc;
  if (rpc === undefined) throw new UsageError('missing --rpc');
  let url: URL;
  try {
    url = new URL(rpc);
  } catch {
    throw new UsageError(`--rpc: not a URL: ${rpc}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--rpc: expected http(s), got ${rpc}`);

  const keyFile = values['key-file'];
  const anvilKey = values['anvil-key'] === true;
  if (keyFile !== undefined && anvilKey) throw new UsageError('give either --key-file or --anvil-key, not both');
  if (keyFile === undefined && !anvilKey) throw new UsageError('missing --key-file (or --anvil-key on a local anvil)');

  const vestingCliff = seconds('vesting-cliff', values['vesting-cliff']);
  const vestingDuration = seconds('vesting-duration', values['vesting-duration']);
  if (vestingCliff > vestingDuration) {
    throw new UsageError(`--vesting-cliff (${vestingCliff}) must not exceed --vesting-duration (${vestingDuration})`);
  }
  const startFlag = values['vesting-start'] ?? 'now';
  const vestingStart = startFlag === 'now' ? 'now' : seconds('vesting-start', startFlag);

  const root = values['airdrop-root'];
  if (root === undefined) throw new UsageError('missing --airdrop-root');
  if (!/^0x[0-9a-fA-F]{64}$/.test(root)) throw new UsageError(`--airdrop-root: expected 0x and 64 hex digits, got ${root}`);

  const command: DeployCommand = {
    rpcUrl: rpc,
    key: anvilKey ? 'anvil' : readKeyFile(keyFile as string),
    treasury: address('treasury', values.treasury),
    team: address('team', values.team),
    vestingStart,
    vestingCliff,
    vestingDuration,
    airdropRoot: root as Hex,
    airdropDeadline: values['airdrop-deadline'] === undefined ? 0n : seconds('airdrop-deadline', values['airdrop-deadline']),
    settler: address('settler', values.settler),
  };
  if (values.admin !== undefined) command.admin = address('admin', values.admin);
  if (values.out !== undefined) {
    if (values.out === '') throw new UsageError('--out: empty path');
    command.out = values.out;
  }
  return command;
}

/**
 * Runs `deploy`: deploys the contracts and writes the addresses file.
 * @returns the deployment and the path written
 */
export async function runDeploy(
  command: DeployCommand,
  log: (message: string) => void = () => {},
): Promise<{ deployment: GitBlockDeployment; file: string }> {
  const client = createPublicClient({ transport: http(command.rpcUrl) });
  const chainId = await client.getChainId();
  if (command.key === 'anvil' && chainId !== ANVIL_CHAIN_ID) {
    // The anvil key is public: anything it deploys on a real chain belongs to everyone.
    throw new UsageError(`--anvil-key is only for a local anvil (chain ${ANVIL_CHAIN_ID}), this is chain ${chainId}`);
  }
  const start =
    command.vestingStart === 'now' ? (await client.getBlock({ blockTag: 'latest' })).timestamp : command.vestingStart;

  const deployment = await deployGitBlock({
    rpcUrl: command.rpcUrl,
    deployerKey: command.key === 'anvil' ? ANVIL_DEFAULT_KEY : command.key,
    treasury: command.treasury,
    team: {
      beneficiary: command.team,
      start,
      cliffSeconds: command.vestingCliff,
      durationSeconds: command.vestingDuration,
    },
    airdropRoot: command.airdropRoot,
    airdropDeadline: command.airdropDeadline,
    settler: command.settler,
    ...(command.admin === undefined ? {} : { admin: command.admin }),
    log,
  });

  const file = resolve(command.out ?? `.data/deployment.${deployment.chainId}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(toDeploymentFile(deployment), null, 2)}\n`);
  return { deployment, file };
}

/** One line describing an error: viem's short message when there is one, never a stack. */
function oneLine(err: unknown): string {
  const message = err instanceof BaseError ? err.shortMessage : err instanceof Error ? err.message : String(err);
  return message.split('\n')[0] ?? 'unknown error';
}

/**
 * The CLI entry point, separate from process handling so tests can call it.
 * @returns the process exit code: 0 ok, 1 deployment failed, 2 bad input
 */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || rest.includes('--help')) {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command !== 'deploy') {
    console.error(`gitblock-contracts: unknown command "${command}" (expected: deploy)`);
    return 2;
  }
  try {
    const { deployment, file } = await runDeploy(parseDeployArgs(rest), (m) => console.error(m));
    console.log(`deployed GBT ${deployment.gbt} on chain ${deployment.chainId}; addresses written to ${file}`);
    return 0;
  } catch (err) {
    const usage = err instanceof UsageError || err instanceof DeployConfigError;
    console.error(`gitblock-contracts: ${oneLine(err)}`);
    return usage ? 2 : 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
