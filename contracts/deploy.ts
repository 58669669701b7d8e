/**
 * Deploys GitBlock's on-chain rewards: the GBT token and the three contracts that hold its
 * allocations (RewardsDistributor 40%, TeamVesting 20%, Airdrop 10%; the treasury's 30% goes to a
 * plain address).
 *
 * Ordering. GBT mints the whole supply in its constructor, so the holders must exist (or at
 * least have known addresses) first, while the distributor and the airdrop must know the token.
 * We break the cycle by predicting GBT's address: a CREATE address depends only on the sender and
 * its nonce, so with the deployer's next nonce n we send, in order and with explicit nonces,
 *   n   TeamVesting         (needs no token address)
 *   n+1 RewardsDistributor  (token = predicted GBT address, stored as an immutable)
 *   n+2 Airdrop             (token = predicted GBT address, stored as an immutable)
 *   n+3 GBT                 (mints to the three contracts above and to the treasury)
 * and check that GBT landed at the predicted address. The alternative, a once-only `setToken`
 * call after deployment, would leave the token address mutable storage, cost an extra
 * transaction and open a window in which the contracts exist without a token; prediction keeps
 * every wiring immutable. The price is that the deployer must send nothing else while this runs.
 */
import {
  createPublicClient,
  createWalletClient,
  encodeDeployData,
  getAddress,
  getContractAddress,
  http,
  isAddress,
  zeroAddress,
  type Address,
  type Chain,
  type Hex,
  type PublicClient,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import {
  airdropAbi,
  airdropBytecode,
  gbtAbi,
  gbtBytecode,
  rewardsDistributorAbi,
  rewardsDistributorBytecode,
  teamVestingAbi,
  teamVestingBytecode,
} from './artifacts/index.ts';
import { codedError } from '../domain/errors.ts';
import { chainAt, type AccountWallet } from './chain.ts';

/** anvil's default account 0 (from the public test mnemonic); for local chains only. */
export const ANVIL_DEFAULT_KEY: Hex = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
/** anvil's chain id. */
export const ANVIL_CHAIN_ID = 31337;

const MAX_UINT64 = (1n << 64n) - 1n;

/** Team vesting schedule; all times are unix seconds (chain time). */
export interface TeamVestingSchedule {
  /** Owner of the vesting wallet, who receives released tokens. */
  beneficiary: Address;
  /** When vesting starts. */
  start: bigint;
  /** Seconds after `start` before anything is releasable; at most `durationSeconds`. */
  cliffSeconds: bigint;
  /** Seconds from `start` until everything is vested. */
  durationSeconds: bigint;
}

/** Who signs the deployment: a raw private key, or a wallet client that carries an account. */
export type Deployer =
  | { deployerKey: Hex }
  | { walletClient: AccountWallet<Chain | undefined> };

/** Options of {@link deployGitBlock}. */
export type DeployGitBlockOptions = Deployer & {
  /** JSON-RPC endpoint used for reads and receipts (and for sending, with `deployerKey`). */
  rpcUrl: string;
  /** Receives the 30% community-treasury allocation and any swept airdrop leftovers. */
  treasury: Address;
  team: TeamVestingSchedule;
  /** Root of the (account, amount) airdrop tree, e.g. `buildAirdropTree(...).root`. */
  airdropRoot: Hex;
  /** Last unix time airdrop claims are accepted; 0 or absent means claims never close. */
  airdropDeadline?: bigint;
  /** Gets SETTLER_ROLE on the distributor (the settlement service's address). */
  settler: Address;
  /** Distributor DEFAULT_ADMIN_ROLE + PAUSER_ROLE and airdrop owner; defaults to the deployer. */
  admin?: Address;
  /** Progress messages (one per transaction), e.g. `console.log`. */
  log?: (message: string) => void;
};

/** Where everything landed. */
export interface GitBlockDeployment {
  chainId: number;
  deployer: Address;
  gbt: Address;
  distributor: Address;
  vesting: Address;
  airdrop: Address;
  /** Block of the GBT deployment (the last one): indexers can start scanning here. */
  blockNumber: bigint;
}

/** Bad deployment options, detected before anything is sent. */
export class DeployConfigError extends codedError('DEPLOY_CONFIG_INVALID') {
  override readonly name = 'DeployConfigError';
}

function checkAddress(what: string, value: string): Address {
  if (!isAddress(value, { strict: false })) throw new DeployConfigError(`${what} is not an address: ${value}`);
  const address = getAddress(value);
  if (address === zeroAddress) throw new DeployConfigError(`${what} is the zero address`);
  return address;
}

function checkUint64(what: string, value: bigint): bigint {
  if (typeof value !== 'bigint' || value < 0n || value > MAX_UINT64) {
    throw new DeployConfigError(`${what} must be a bigint in [0, 2^64), got ${String(value)}`);
  }
  return value;
}

/** The options once checked: what the constructors get, and what they would refuse. */
function checkOptions(options: DeployGitBlockOptions) {
  const treasury = checkAddress('treasury', options.treasury);
  const settler = checkAddress('settler', options.settler);
  const beneficiary = checkAddress('team beneficiary', options.team.beneficiary);
  const start = checkUint64('vesting start', options.team.start);
  const duration = checkUint64('vesting duration', options.team.durationSeconds);
  const cliff = checkUint64('vesting cliff', options.team.cliffSeconds);
  // Same checks the constructors make, caught here instead of as a revert halfway through.
  if (cliff > duration) throw new DeployConfigError(`vesting cliff (${cliff}s) exceeds duration (${duration}s)`);
  if (start + cliff > MAX_UINT64) throw new DeployConfigError('vesting start + cliff overflows uint64');
  if (!/^0x[0-9a-fA-F]{64}$/.test(options.airdropRoot)) {
    throw new DeployConfigError(`airdrop root must be 32 bytes of hex, got ${options.airdropRoot}`);
  }
  const airdropDeadline = checkUint64('airdrop deadline', options.airdropDeadline ?? 0n);
  return { treasury, settler, beneficiary, start, duration, cliff, airdropDeadline };
}

/** The RPC's clients and the deployer's wallet (from the key, or the one given). */
async function connect(options: DeployGitBlockOptions) {
  const transport = http(options.rpcUrl);
  const publicClient: PublicClient = createPublicClient({ transport });
  const chainId = await publicClient.getChainId();
  const chain = chainAt(chainId, options.rpcUrl);
  const wallet: AccountWallet<Chain | undefined> =
    'walletClient' in options
      ? options.walletClient
      : createWalletClient({ account: privateKeyToAccount(options.deployerKey), chain, transport });
  return { publicClient, chainId, wallet, chain: wallet.chain ?? chain };
}

type Connection = Awaited<ReturnType<typeof connect>>;

/**
 * Sends the creation transaction `data` with the deployer's nonce `nonce`, waits for it and
 * returns the contract's address, failing loudly on a revert.
 */
async function deployOne(c: Connection, name: string, data: Hex, nonce: number, log: (message: string) => void): Promise<{ address: Address; blockNumber: bigint }> {
  const hash = await c.wallet.sendTransaction({ data, account: c.wallet.account, chain: c.chain, nonce });
  const receipt = await c.publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== 'success' || !receipt.contractAddress) {
    throw new Error(`${name} deployment reverted (tx ${hash})`);
  }
  const address = getAddress(receipt.contractAddress);
  log(`${name} at ${address} (tx ${hash}, gas ${receipt.gasUsed})`);
  return { address, blockNumber: receipt.blockNumber };
}

/**
 * Deploys GBT, RewardsDistributor, TeamVesting and Airdrop, waiting for each receipt.
 * All options are validated before the first transaction, so a typo costs no gas.
 * @returns the four addresses, the chain id, the deployer and the final block number
 * @throws DeployConfigError on invalid options; Error when a transaction fails or GBT does not
 *         land at the predicted address (the deployer sent another transaction meanwhile)
 */
export async function deployGitBlock(options: DeployGitBlockOptions): Promise<GitBlockDeployment> {
  const log = options.log ?? (() => {});
  const { treasury, settler, beneficiary, start, duration, cliff, airdropDeadline } = checkOptions(options);
  const c = await connect(options);
  const { publicClient, chainId } = c;
  const deployer = c.wallet.account.address;
  const admin = options.admin === undefined ? deployer : checkAddress('admin', options.admin);

  if (airdropDeadline !== 0n) {
    const now = (await publicClient.getBlock({ blockTag: 'latest' })).timestamp;
    if (airdropDeadline <= now) {
      throw new DeployConfigError(`airdrop deadline ${airdropDeadline} is not after the chain's time ${now}`);
    }
  }

  // 'pending' counts transactions already in the pool, so the prediction holds even if the
  // deployer has unmined transactions (as long as nothing else is sent while we deploy).
  const nonce = await publicClient.getTransactionCount({ address: deployer, blockTag: 'pending' });
  const predictedGbt = getContractAddress({ from: deployer, nonce: BigInt(nonce + 3) });
  if ((await publicClient.getCode({ address: predictedGbt })) !== undefined) {
    throw new Error(`predicted GBT address ${predictedGbt} already has code`);
  }
  log(`deploying from ${deployer} on chain ${chainId}, nonce ${nonce}, GBT will be ${predictedGbt}`);

  const vestingData = encodeDeployData({ abi: teamVestingAbi, bytecode: teamVestingBytecode, args: [beneficiary, start, duration, cliff] });
  const vesting = await deployOne(c, 'TeamVesting', vestingData, nonce, log);
  const distributorData = encodeDeployData({ abi: rewardsDistributorAbi, bytecode: rewardsDistributorBytecode, args: [predictedGbt, admin, settler] });
  const distributor = await deployOne(c, 'RewardsDistributor', distributorData, nonce + 1, log);
  const airdropArgs = [predictedGbt, options.airdropRoot, treasury, airdropDeadline, admin] as const;
  const airdrop = await deployOne(c, 'Airdrop', encodeDeployData({ abi: airdropAbi, bytecode: airdropBytecode, args: airdropArgs }), nonce + 2, log);
  const gbtData = encodeDeployData({ abi: gbtAbi, bytecode: gbtBytecode, args: [distributor.address, treasury, vesting.address, airdrop.address] });
  const gbt = await deployOne(c, 'GBT', gbtData, nonce + 3, log);
  if (gbt.address !== predictedGbt) {
    // The distributor and airdrop point at an address with no token: the deployment is unusable.
    throw new Error(
      `GBT deployed at ${gbt.address}, not the predicted ${predictedGbt}: ` +
        'the deployer sent another transaction during deployment; redeploy from an idle account',
    );
  }

  return {
    chainId,
    deployer,
    gbt: gbt.address,
    distributor: distributor.address,
    vesting: vesting.address,
    airdrop: airdrop.address,
    blockNumber: gbt.blockNumber,
  };
}

/** The JSON form written by the CLI (`blockNumber` as a decimal string). */
export type DeploymentFile = Omit<GitBlockDeployment, 'blockNumber'> & { blockNumber: string };

/** Serializes a deployment for `.data/deployment.<chainId>.json`. */
export function toDeploymentFile(d: GitBlockDeployment): DeploymentFile {
  return { ...d, blockNumber: d.blockNumber.toString() };
}

/**
 * Parses the JSON written by the CLI back into a deployment, validating every field.
 * @throws DeployConfigError when a field is missing or malformed
 */
export function parseDeploymentFile(json: unknown): GitBlockDeployment {
  if (typeof json !== 'object' || json === null) throw new DeployConfigError('deployment file is not an object');
  const o = json as Record<string, unknown>;
  const addr = (k: string): Address => {
    const v = o[k];
    if (typeof v !== 'string') throw new DeployConfigError(`deployment file: ${k} missing`);
    return checkAddress(`deployment file ${k}`, v);
  };
  if (typeof o.chainId !== 'number' || !Number.isSafeInteger(o.chainId) || o.chainId <= 0) {
    throw new DeployConfigError('deployment file: chainId must be a positive integer');
  }
  if (typeof o.blockNumber !== 'string' || !/^\d+$/.test(o.blockNumber)) {
    throw new DeployConfigError('deployment file: blockNumber must be a decimal string');
  }
  return {
    chainId: o.chainId,
    deployer: addr('deployer'),
    gbt: addr('gbt'),
    distributor: addr('distributor'),
    vesting: addr('vesting'),
    airdrop: addr('airdrop'),
    blockNumber: BigInt(o.blockNumber),
  };
}
