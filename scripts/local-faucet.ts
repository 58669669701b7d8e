/**
 * ETH for gas on `npm start`'s own chain: every operator that registers a node (through the edge
 * or the gateway) gets a balance with anvil's `anvil_setBalance`, so `gitblock-node rewards claim`
 * works on the local network without a wallet. Only the launcher starts it, and it refuses any
 * chain but anvil's: the production gateway and edge have no such code path.
 */
import type { Db } from 'mongodb';
import { createPublicClient, createTestClient, formatEther, http, parseEther, type Address } from 'viem';
import { ANVIL_CHAIN_ID } from '../contracts/deploy.ts';

import { store } from '../store/index.ts';

export interface LocalFaucetOptions {
  db: Db;
  rpcUrl: string;
  say: (line: string) => void;
  /** Each operator's balance is raised to this (default 10 ETH); one holding more is left alone. */
  amountWei?: bigint;
  intervalMs?: number;
}

export class LocalFaucet {
  private readonly seen = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> = Promise.resolve();

  private constructor(
    private readonly options: LocalFaucetOptions,
    private readonly chain: { getBalance(a: { address: Address }): Promise<bigint>; setBalance(a: { address: Address; value: bigint }): Promise<void> },
  ) {}

  /**
   * Funds the operators registered so far, then each new one within `intervalMs`.
   * @throws when the chain is not the local anvil (chain id 31337)
   */
  static async start(options: LocalFaucetOptions): Promise<LocalFaucet> {
    const transport = http(options.rpcUrl, { retryCount: 0, timeout: 5_000 });
    const chainId = await createPublicClient({ transport }).getChainId();
    if (chainId !== ANVIL_CHAIN_ID) throw new Error(`the local faucet runs only on anvil (chain ${ANVIL_CHAIN_ID}); ${options.rpcUrl} is chain ${chainId}`);
    const test = createTestClient({ mode: 'anvil', transport });
    const pub = createPublicClient({ transport });
    const faucet = new LocalFaucet(options, { getBalance: (a) => pub.getBalance(a), setBalance: (a) => test.setBalance(a) });
    await faucet.fundNew();
    faucet.timer = setInterval(() => {
      faucet.round = faucet.round.then(() => faucet.fundNew()).catch((err: unknown) => options.say(`faucet: ${(err as Error).message.split('\n')[0]}`));
    }, options.intervalMs ?? 1_000);
    faucet.timer.unref();
    return faucet;
  }

  /** Funds every registered operator not funded yet. */
  async fundNew(): Promise<void> {
    const amount = this.options.amountWei ?? parseEther('10');
    const operators = await store(this.options.db).registrations.distinct('operator');
    for (const operator of operators) {
      const key = operator.toLowerCase();
      if (this.seen.has(key)) continue;
      const address = operator as Address;
      if ((await this.chain.getBalance({ address })) < amount) {
        await this.chain.setBalance({ address, value: amount });
        this.options.say(`faucet: gave operator ${address} ${formatEther(amount)} ETH for gas (local chain only)`);
      }
      this.seen.add(key);
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.round.catch(() => {});
  }
}
