/** A viem chain for an RPC endpoint known only by its id (anvil, a private testnet). */
import { defineChain, type Account, type Chain, type Transport, type WalletClient } from 'viem';

export function chainAt(chainId: number, rpcUrl: string): Chain {
  return defineChain({
    id: chainId,
    name: `chain ${chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
}

/** A wallet that carries its account (the deployer, the settler). */
export type AccountWallet<C extends Chain | undefined = Chain> = WalletClient<Transport, C, Account>;
