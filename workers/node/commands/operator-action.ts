/**
 * `gitblock-node reinstate <nodeId>` and `gitblock-node retire <nodeId>`: the operator's actions
 * on a node, signed with the operator key and sent to the gateway, which alone may pass them on.
 * The gateway decides whether the action may happen now; a refusal prints its reason and exits
 * non-zero.
 */
import { randomBytes } from 'node:crypto';
import type { LocalAccount } from 'viem';
import { z } from 'zod';
import type { Config } from '../../../config/env.ts';
import { operatorActionFieldsSchema, operatorActionTypedData, type OperatorAction, type OperatorActionBody } from '../../../domain/operator-action.ts';
import { defaultRegistrationLifetimeSeconds } from '../../../domain/registration.ts';
import { callGateway, GatewayRefusedError, gatewayUrl, operatorAccount } from './gateway.ts';

export interface OperatorActionFlags {
  gateway?: string;
  keyFile?: string;
}

export interface SignOperatorActionOptions {
  /** Unix seconds; defaults to the system clock. */
  now?: () => number;
  lifetimeSeconds?: number;
}

/**
 * Signs an operator action: the exact body the gateway accepts, with a fresh random nonce and
 * an expiry `lifetimeSeconds` (default 5 minutes, as registration) from now.
 *
 * @throws {Error} for a node id the gateway would refuse, naming it.
 */
export async function signOperatorAction(account: LocalAccount, nodeId: string, action: OperatorAction, chainId: number, options: SignOperatorActionOptions = {}): Promise<OperatorActionBody> {
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  const parsed = operatorActionFieldsSchema.safeParse({
    nodeId,
    action,
    expiry: now() + (options.lifetimeSeconds ?? defaultRegistrationLifetimeSeconds),
    nonce: `0x${randomBytes(32).toString('hex')}`,
  });
  if (!parsed.success) throw new Error(`cannot ${action} ${JSON.stringify(nodeId)}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return { action: parsed.data, signature: await account.signTypedData(operatorActionTypedData(chainId, parsed.data)) };
}

const networkSchema = z.object({ chainId: z.number().int().positive() });
const resultSchema = z.object({ nodeId: z.string(), action: z.string(), state: z.string() });

export async function operatorActionCommand(action: OperatorAction, nodeId: string, flags: OperatorActionFlags, config: Config): Promise<void> {
  const gateway = gatewayUrl(flags.gateway, config);
  const account = await operatorAccount(flags.keyFile, config);
  // The chain the gateway verifies for: a signature for another chain's domain is refused.
  const network = networkSchema.safeParse(await callGateway(gateway, '/v1/network'));
  if (!network.success) throw new Error(`the gateway at ${gateway} sent no valid chainId`);
  const body = await signOperatorAction(account, nodeId, action, network.data.chainId);
  let answer: unknown;
  try {
    answer = await callGateway(gateway, `/v1/nodes/${nodeId}/${action}`, { method: 'POST', body });
  } catch (err) {
    // Which key signed is the first thing to check when the gateway says it is not the operator's.
    if (err instanceof GatewayRefusedError && err.status === 403) throw new Error(`${err.message} (signed with ${account.address}; give the operator's key with --key-file)`, { cause: err });
    throw err;
  }
  const result = resultSchema.safeParse(answer);
  if (!result.success) throw new Error(`the gateway at ${gateway} accepted the ${action} but answered an unexpected body`);
  console.log(`node ${nodeId}: ${action === 'reinstate' ? 'reinstated' : 'retired'}, now ${result.data.state}`);
}
