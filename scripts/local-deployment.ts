/**
 * The contracts of the local network, for `npm start`: deployed once on the local anvil (its
 * state persists in the data folder) and reused while their code is still there. The settler
 * is anvil's public account 1; its key goes to `<data dir>/settler.key` (mode 0600), the
 * addresses to `<data dir>/deployment.31337.json`, which is what GITBLOCK_DEPLOYMENT_FILE and
 * GITBLOCK_SETTLER_KEY_FILE then point at. Local chains only: these keys are public.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createPublicClient, http, type Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { ANVIL_CHAIN_ID, ANVIL_DEFAULT_KEY, deployGitBlock, parseDeploymentFile, toDeploymentFile } from '../contracts/deploy.ts';
import { buildAirdropTree } from '../contracts/merkle.ts';

/** anvil's public accounts 1–3 (test mnemonic); never use them on a real chain. */
const ANVIL_SETTLER_KEY: Hex = '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d';
const ANVIL_ACCOUNT_2 = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC';
const ANVIL_ACCOUNT_3 = '0x90F79bf6EB2c4f870365E96051C8D8C1fA6fc86C';

export interface LocalDeployment {
  deploymentFile: string;
  settlerKeyFile: string;
  created: boolean;
}

export async function ensureLocalDeployment(rpcUrl: string, dataDir: string, log: (line: string) => void = () => {}): Promise<LocalDeployment> {
  const client = createPublicClient({ transport: http(rpcUrl) });
  const chainId = await client.getChainId();
  if (chainId !== ANVIL_CHAIN_ID) throw new Error(`the local deployment uses anvil's public keys; ${rpcUrl} is chain ${chainId}, not ${ANVIL_CHAIN_ID}`);
  mkdirSync(dataDir, { recursive: true });
  const deploymentFile = resolve(join(dataDir, `deployment.${chainId}.json`));
  const settlerKeyFile = resolve(join(dataDir, 'settler.key'));
  writeFileSync(settlerKeyFile, `${ANVIL_SETTLER_KEY}\n`, { mode: 0o600 });

  if (existsSync(deploymentFile)) {
    try {
      const existing = parseDeploymentFile(JSON.parse(readFileSync(deploymentFile, 'utf8')));
      if ((await client.getCode({ address: existing.distributor })) !== undefined) return { deploymentFile, settlerKeyFile, created: false };
    } catch {
      // Unreadable or from a chain that was reset: deploy again below.
    }
  }
  const now = (await client.getBlock({ blockTag: 'latest' })).timestamp;
  const deployment = await deployGitBlock({
    rpcUrl,
    deployerKey: ANVIL_DEFAULT_KEY,
    treasury: ANVIL_ACCOUNT_2,
    settler: privateKeyToAccount(ANVIL_SETTLER_KEY).address,
    team: { beneficiary: ANVIL_ACCOUNT_3, start: now, cliffSeconds: 365n * 86_400n, durationSeconds: 4n * 365n * 86_400n },
    airdropRoot: buildAirdropTree([{ account: ANVIL_ACCOUNT_3, amount: 1n }]).root,
    log,
  });
  writeFileSync(deploymentFile, `${JSON.stringify(toDeploymentFile(deployment), null, 2)}\n`);
  return { deploymentFile, settlerKeyFile, created: true };
}
