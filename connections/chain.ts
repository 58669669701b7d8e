import { createPublicClient, http, type PublicClient } from 'viem';
import { anvil } from 'viem/chains';

/** A read client for the chain at `rpcUrl` (anvil locally). */
export function chainClient(rpcUrl: string): PublicClient {
  return createPublicClient({ chain: anvil, transport: http(rpcUrl, { timeout: 10_000 }) });
}
