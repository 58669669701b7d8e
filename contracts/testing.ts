/**
 * Helpers shared by the contract tests (not a test file itself): anvil accounts from the public
 * test mnemonic, viem clients, and assertions on mined transactions and decoded reverts.
 *
 * Test files share one anvil, so each file uses its own range of mnemonic indices (documented at
 * the top of the file) and sends from each account sequentially, letting viem read the nonce.
 */
import {
  BaseError,
  ContractFunctionRevertedError,
  createPublicClient,
  createWalletClient,
  decodeErrorResult,
  http,
  isHex,
  type Abi,
  type Chain,
  type Hex,
  type HDAccount,
  type PublicClient,
  type TransactionReceipt,
  type Transport,
  type WalletClient,
} from 'viem';
import { mnemonicToAccount } from 'viem/accounts';
import { foundry } from 'viem/chains';

/** anvil's default mnemonic; its keys are public, for local chains only. */
export const TEST_MNEMONIC = 'test test test test test test test test test test test junk';

/** The account at `m/44'/60'/0'/0/<index>` of the test mnemonic (funded by anvil when index < --accounts). */
export function testAccount(index: number): HDAccount {
  return mnemonicToAccount(TEST_MNEMONIC, { addressIndex: index });
}

/** The private key of {@link testAccount}(index), e.g. to write a key file for the CLI. */
export function testAccountKey(index: number): Hex {
  const key = testAccount(index).getHdKey().privateKey;
  if (!key) throw new Error(`no private key for test account ${index}`);
  return `0x${Buffer.from(key).toString('hex')}`;
}

export type TestWallet = WalletClient<Transport, Chain, HDAccount>;

/** A public client for anvil (chain 31337). */
export function publicClientFor(rpcUrl: string): PublicClient<Transport, Chain> {
  return createPublicClient({ chain: foundry, transport: http(rpcUrl) });
}

/** A wallet client that signs locally as `account`. */
export function walletFor(rpcUrl: string, account: HDAccount): TestWallet {
  return createWalletClient({ account, chain: foundry, transport: http(rpcUrl) });
}

/** Waits for a transaction and asserts it succeeded. */
export async function mined(client: PublicClient, hash: Hex | Promise<Hex>): Promise<TransactionReceipt> {
  const receipt = await client.waitForTransactionReceipt({ hash: await hash });
  if (receipt.status !== 'success') throw new Error(`transaction ${receipt.transactionHash} reverted`);
  return receipt;
}

/** A decoded custom-error revert. */
export interface Revert {
  name: string;
  args: readonly unknown[];
}

/**
 * Awaits a contract call or write that must revert, and returns the decoded custom error.
 * viem simulates a write (gas estimation) before sending it, so a reverting write is never mined
 * and consumes no nonce. Throws if the promise resolves or fails for another reason.
 * @param abi decodes raw revert data where viem did not (deployments: deployContract does not
 *            decode constructor errors)
 */
export async function revertOf(promise: Promise<unknown>, abi?: Abi): Promise<Revert> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof BaseError) {
      const reverted = err.walk((e) => e instanceof ContractFunctionRevertedError);
      if (reverted instanceof ContractFunctionRevertedError && reverted.data) {
        return { name: reverted.data.errorName, args: reverted.data.args ?? [] };
      }
      const raw = err.walk((e) => {
        const data = (e as { data?: unknown }).data;
        return typeof data === 'string' && isHex(data) && data.length >= 10;
      }) as { data?: Hex } | null;
      if (abi && raw?.data) {
        const decoded = decodeErrorResult({ abi, data: raw.data });
        return { name: decoded.errorName, args: decoded.args ?? [] };
      }
    }
    throw err;
  }
  throw new Error('expected a revert, but the call succeeded');
}
