/**
 * The settler's view of the chain: the RewardsDistributor from a deployment file, and a wallet
 * holding the settler key, checked at start so a misconfigured control worker fails at once
 * with one clear line rather than in the middle of a settlement.
 */
import { openSync, closeSync, fstatSync, readFileSync } from 'node:fs';
import {
  BaseError,
  ContractFunctionRevertedError,
  createPublicClient,
  createWalletClient,
  http,
  keccak256,
  toHex,
  type Address,
  type Chain,
  type Hex,
  type PublicClient,
  type Transport,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import type { Config } from '../config/env.ts';
import { rewardsDistributorAbi } from '../contracts/artifacts/index.ts';
import { chainAt, type AccountWallet } from '../contracts/chain.ts';
import { parseDeploymentFile, type GitBlockDeployment } from '../contracts/deploy.ts';
import { codedError } from '../domain/errors.ts';

export interface SettlementChain {
  chainId: number;
  distributor: Address;
  /** Where to start looking for EpochPosted events: the deployment's block. */
  fromBlock: bigint;
  /** Blocks a posted root needs (its own block counts as 1) before the epoch counts as settled. */
  confirmations: number;
  publicClient: PublicClient<Transport, Chain>;
  wallet: AccountWallet;
  pollingIntervalMs: number;
}

export class SettlementConfigError extends codedError('SETTLEMENT_CONFIG_INVALID') {
  override name = 'SettlementConfigError';
}

/** Reads a private key file (one line, 0x + 64 hex), refusing one that group or others can read. */
export function readPrivateKeyFile(file: string, what: string): Hex {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw new SettlementConfigError(`cannot read the ${what} key file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new SettlementConfigError(`${what} key file ${file} is not a regular file`);
    if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
      throw new SettlementConfigError(`${what} key file ${file} is accessible to group or others; fix it with: chmod 600 ${file}`);
    }
    if (stat.size > 1024) throw new SettlementConfigError(`${what} key file ${file} is too large to be a key`);
    const text = readFileSync(fd, 'utf8').trim();
    const key = text.startsWith('0x') ? text : `0x${text}`;
    // Never echo the content: it is a secret even when malformed.
    if (!/^0x[0-9a-fA-F]{64}$/.test(key)) throw new SettlementConfigError(`${what} key file ${file} does not hold a 32-byte hex private key`);
    return key as Hex;
  } finally {
    closeSync(fd);
  }
}

export function readDeploymentFile(file: string): GitBlockDeployment {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new SettlementConfigError(`cannot read the deployment file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return parseDeploymentFile(json);
  } catch (err) {
    throw new SettlementConfigError(`${file}: ${(err as Error).message}`);
  }
}

const SETTLER_ROLE = keccak256(toHex('SETTLER_ROLE'));

export interface ConnectSettlementChainOptions {
  rpcUrl: string;
  deployment: GitBlockDeployment;
  settlerKey: Hex;
  confirmations: number;
  pollingIntervalMs?: number;
}

/**
 * Connects the settler: checks the RPC's chain id against the deployment, that the distributor
 * has code there, and that the key holds SETTLER_ROLE.
 * @throws SettlementConfigError naming what is wrong
 */
export async function connectSettlementChain(options: ConnectSettlementChainOptions): Promise<SettlementChain> {
  const pollingIntervalMs = options.pollingIntervalMs ?? 500;
  const probe = createPublicClient({ transport: http(options.rpcUrl, { timeout: 15_000 }) });
  let chainId: number;
  try {
    chainId = await probe.getChainId();
  } catch (err) {
    throw new SettlementConfigError(`cannot reach the chain at ${options.rpcUrl}: ${err instanceof BaseError ? err.shortMessage : (err as Error).message}`);
  }
  const { deployment } = options;
  if (chainId !== deployment.chainId) {
    throw new SettlementConfigError(`the deployment is for chain ${deployment.chainId}, but ${options.rpcUrl} is chain ${chainId}`);
  }
  const chain = chainAt(chainId, options.rpcUrl);
  const transport = http(options.rpcUrl, { timeout: 15_000 });
  const publicClient = createPublicClient({ chain, transport, pollingInterval: pollingIntervalMs });
  const account = privateKeyToAccount(options.settlerKey);
  const wallet = createWalletClient({ account, chain, transport, pollingInterval: pollingIntervalMs });
  if ((await publicClient.getCode({ address: deployment.distributor })) === undefined) {
    throw new SettlementConfigError(`no RewardsDistributor at ${deployment.distributor} on chain ${chainId} (was the chain reset? redeploy)`);
  }
  const isSettler = await publicClient.readContract({
    address: deployment.distributor,
    abi: rewardsDistributorAbi,
    functionName: 'hasRole',
    args: [SETTLER_ROLE, account.address],
  });
  if (!isSettler) throw new SettlementConfigError(`${account.address} does not hold SETTLER_ROLE on the distributor ${deployment.distributor}`);
  return {
    chainId,
    distributor: deployment.distributor,
    fromBlock: deployment.blockNumber,
    confirmations: options.confirmations,
    publicClient: publicClient,
    wallet,
    pollingIntervalMs,
  };
}

/**
 * The settler configured by `GITBLOCK_DEPLOYMENT_FILE` and `GITBLOCK_SETTLER_KEY_FILE`, or
 * undefined when neither is set (that control worker then refuses to settle).
 */
export async function settlementChainFromConfig(config: Config): Promise<SettlementChain | undefined> {
  const deploymentFile = config.GITBLOCK_DEPLOYMENT_FILE;
  const keyFile = config.GITBLOCK_SETTLER_KEY_FILE;
  if (deploymentFile === undefined && keyFile === undefined) return undefined;
  if (deploymentFile === undefined || keyFile === undefined) {
    throw new SettlementConfigError('set both GITBLOCK_DEPLOYMENT_FILE and GITBLOCK_SETTLER_KEY_FILE to settle epochs (or neither)');
  }
  return connectSettlementChain({
    rpcUrl: config.CHAIN_RPC_URL,
    deployment: readDeploymentFile(deploymentFile),
    settlerKey: readPrivateKeyFile(keyFile, 'settler'),
    confirmations: config.GITBLOCK_SETTLEMENT_CONFIRMATIONS,
  });
}

/** The custom error a contract call reverted with (e.g. `EpochAlreadyPosted`), or undefined. */
export function revertName(err: unknown): string | undefined {
  if (!(err instanceof BaseError)) return undefined;
  const reverted = err.walk((e) => e instanceof ContractFunctionRevertedError);
  return reverted instanceof ContractFunctionRevertedError ? reverted.data?.errorName : undefined;
}

/** One line for an error: viem's short message when there is one. */
export function shortError(err: unknown): string {
  const message = err instanceof BaseError ? err.shortMessage : err instanceof Error ? err.message : String(err);
  return message.split('\n')[0] ?? 'unknown error';
}
