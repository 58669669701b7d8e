/**
 * `gitblock-node rewards`: the operator's GBT, from the gateway: accrued and not yet settled,
 * settling, settled and claimable. `gitblock-node rewards claim`: claims every claimable epoch
 * on chain with the operator key, after checking each proof against the root on chain.
 */
import {
  BaseError,
  createPublicClient,
  createWalletClient,
  formatEther,
  formatGwei,
  formatUnits,
  http,
  InsufficientFundsError,
  type Address,
  type Hex,
  type PublicClient,
} from 'viem';
import { z } from 'zod';
import type { Config } from '../../../config/env.ts';
import { revertName, shortError } from '../../../activities/settlement-chain.ts';
import { gbtAbi, rewardsDistributorAbi } from '../../../contracts/artifacts/index.ts';
import { chainAt } from '../../../contracts/chain.ts';
import { verifyRewardClaim } from '../../../contracts/merkle.ts';
import { rewardsViewSchema } from '../../../domain/rewards-view.ts';
import { callGateway, gatewayUrl, operatorAccount } from './gateway.ts';

export interface RewardsFlags {
  gateway?: string;
  keyFile?: string;
  json?: boolean;
}

export interface ClaimFlags {
  gateway?: string;
  keyFile?: string;
  rpc?: string;
}

export type Rewards = z.infer<typeof rewardsViewSchema>;

const gbt = (value: string | bigint) => `${formatUnits(BigInt(value), 18)} GBT`;

/** GET /v1/rewards/<operator> from the gateway, validated. */
export async function fetchRewards(gateway: string, operator: Address, fetchImpl: typeof fetch = fetch): Promise<Rewards> {
  const parsed = rewardsViewSchema.safeParse(await callGateway(gateway, `/v1/rewards/${operator}`, { fetchImpl }));
  if (!parsed.success) throw new Error(`the gateway at ${gateway} sent an unexpected rewards body: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

export function formatRewards(r: Rewards): string {
  const claimable = r.epochs.filter((e) => e.status === 'claimable').map((e) => e.epoch);
  const lines = [
    `operator   ${r.operator}`,
    `accrued    ${gbt(r.accrued.amount)} (${r.accrued.requests} requests, not yet settled)`,
    ...(BigInt(r.settling) > 0n ? [`settling   ${gbt(r.settling)} (root being posted)`] : []),
    `settled    ${gbt(r.settled)}`,
    `claimable  ${gbt(r.claimable)}${claimable.length ? ` (epochs ${claimable.join(', ')}): run \`gitblock-node rewards claim\`` : ''}`,
    `claimed    ${gbt(r.claimed)}`,
  ];
  if (r.epochs.length) {
    lines.push('', 'epoch  status     paid                        accrued');
    for (const e of r.epochs) lines.push(`${String(e.epoch).padEnd(6)} ${e.status.padEnd(10)} ${gbt(e.amount).padEnd(27)} ${gbt(e.accrued)}`);
  }
  return lines.join('\n');
}

export async function rewardsCommand(flags: RewardsFlags, config: Config): Promise<void> {
  const gateway = gatewayUrl(flags.gateway, config);
  const account = await operatorAccount(flags.keyFile, config);
  const rewards = await fetchRewards(gateway, account.address);
  console.log(flags.json ? JSON.stringify(rewards, null, 2) : formatRewards(rewards));
}

/**
 * Claims every claimable epoch. Each claim is checked first: already claimed on chain (then it
 * is skipped), and the gateway's proof must prove (epoch, operator, amount) against the root on
 * chain (else that epoch is refused, not sent). Prints one line per transaction.
 * @throws when any epoch could not be claimed, after trying all of them
 */
export async function rewardsClaimCommand(flags: ClaimFlags, config: Config): Promise<void> {
  const gateway = gatewayUrl(flags.gateway, config);
  const rpcUrl = flags.rpc ?? config.CHAIN_RPC_URL;
  try {
    const u = new URL(rpcUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
  } catch {
    throw new Error(`--rpc: expected an http(s) URL, got ${rpcUrl}`);
  }
  const account = await operatorAccount(flags.keyFile, config);
  const rewards = await fetchRewards(gateway, account.address);
  // 'settled' means the gateway could not read the claim state: the chain decides below.
  const candidates = rewards.epochs.filter((e) => (e.status === 'claimable' || e.status === 'settled') && e.proof && e.distributor);
  if (candidates.length === 0) {
    console.log('Nothing to claim.');
    return;
  }

  const probe = createPublicClient({ transport: http(rpcUrl, { timeout: 15_000 }) });
  let chainId: number;
  try {
    chainId = await probe.getChainId();
  } catch (err) {
    throw new Error(`cannot reach the chain at ${rpcUrl}: ${shortError(err)}`, { cause: err });
  }
  const chain = chainAt(chainId, rpcUrl);
  const publicClient = createPublicClient({ chain, transport: http(rpcUrl, { timeout: 15_000 }), pollingInterval: 500 });
  const wallet = createWalletClient({ account, chain, transport: http(rpcUrl, { timeout: 15_000 }) });

  let sent = 0;
  const failures: string[] = [];
  for (const e of candidates) {
    const distributor = e.distributor as Address;
    const epoch = BigInt(e.epoch);
    const amountWei = BigInt(e.amount);
    try {
      if (e.chainId !== undefined && e.chainId !== chainId) throw new Error(`it was posted on chain ${e.chainId}, but ${rpcUrl} is chain ${chainId}`);
      const read = { address: distributor, abi: rewardsDistributorAbi } as const;
      if (await publicClient.readContract({ ...read, functionName: 'isClaimed', args: [epoch, account.address] })) continue;
      const root = await publicClient.readContract({ ...read, functionName: 'epochRoot', args: [epoch] });
      // Trust the chain, not the gateway: a proof that does not verify is never sent.
      if (!verifyRewardClaim(root, { epoch, operator: account.address, amount: amountWei, proof: e.proof as Hex[] })) {
        throw new Error(`the gateway's proof does not match the root on chain (${root})`);
      }
      const { request } = await publicClient.simulateContract({ ...read, account, functionName: 'claim', args: [epoch, account.address, amountWei, e.proof as Hex[]] });
      await ensureGasMoney(publicClient, { ...request, chainId });
      const hash = await wallet.writeContract(request).catch((err: unknown) => {
        // The node's own words ("total cost … exceeds the balance") name neither who nor how much.
        if (err instanceof BaseError && err.walk((cause) => cause instanceof InsufficientFundsError)) {
          return ensureGasMoney(publicClient, { ...request, chainId }, true).then(() => Promise.reject(err));
        }
        throw err;
      });
      const receipt = await publicClient.waitForTransactionReceipt({ hash });
      if (receipt.status !== 'success') throw new Error(`transaction ${hash} reverted`);
      console.log(`epoch ${e.epoch}: claimed ${gbt(amountWei)} in tx ${hash}`);
      sent++;
    } catch (err) {
      const name = revertName(err);
      if (name === 'AlreadyClaimed') continue;
      failures.push(`epoch ${e.epoch}: ${name ?? shortError(err)}`);
    }
  }
  if (sent === 0 && failures.length === 0) console.log('Nothing to claim.');
  if (sent > 0) {
    // What the claims added up to, where the operator will look for it: the token balance.
    const distributor = candidates[0]!.distributor as Address;
    const token = await publicClient.readContract({ address: distributor, abi: rewardsDistributorAbi, functionName: 'token' });
    const balance = await publicClient.readContract({ address: token, abi: gbtAbi, functionName: 'balanceOf', args: [account.address] });
    console.log(`balance ${gbt(balance)} at ${account.address} (GBT token ${token})`);
  }
  if (failures.length) throw new Error(`could not claim ${failures.join('; ')}`);
}

/**
 * Refuses, before sending, a claim the operator cannot pay the gas of, naming the address, what it
 * holds and what the claim needs. With `certain`, the node already refused for lack of funds, so
 * the message is given even if the estimate says otherwise (fees moved in between).
 * @throws {Error} naming the address and the ETH it needs
 */
async function ensureGasMoney(client: PublicClient, request: Parameters<PublicClient['estimateContractGas']>[0] & { chainId: number }, certain = false): Promise<void> {
  const address = typeof request.account === 'string' ? request.account : request.account!.address;
  const [gas, fees, balance] = await Promise.all([client.estimateContractGas(request), client.estimateFeesPerGas(), client.getBalance({ address })]);
  const price = fees.maxFeePerGas ?? fees.gasPrice ?? 0n;
  const need = gas * price;
  if (balance >= need && !certain) return;
  throw new Error(
    `${address} holds ${formatEther(balance)} ETH on chain ${request.chainId}, and this claim needs about ${formatEther(need)} ETH for gas ` +
      `(${gas} gas at up to ${formatGwei(price)} gwei): send ${address} at least ${formatEther(need > balance ? need - balance : need)} ETH`,
  );
}
