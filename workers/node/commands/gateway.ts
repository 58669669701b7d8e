/**
 * What the operator's commands (`rewards`, `reinstate`, `retire`) share: the gateway they talk
 * to, the operator key they act with, and one way to call the gateway that turns every failure
 * into a one-line error naming the gateway.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { PrivateKeyAccount } from 'viem';
import { z } from 'zod';
import type { Config } from '../../../config/env.ts';
import { loadOrCreateOperatorKey } from '../identity.ts';
import { BaseError } from '../../../domain/errors.ts';

/**
 * The gateway's base URL, without a trailing slash: `--gateway`, else GITBLOCK_GATEWAY_URL, else
 * this machine's gateway on GATEWAY_PORT (where `npm start` puts it), the same for every command.
 */
export function gatewayUrl(flag: string | undefined, config: Config): string {
  const value = flag ?? config.GITBLOCK_GATEWAY_URL ?? `http://127.0.0.1:${config.GATEWAY_PORT}`;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`--gateway: not a URL: ${value}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`--gateway: expected an http(s) URL, got ${value}`);
  return value.replace(/\/+$/, '');
}

/** The operator key from `--key-file`, GITBLOCK_NODE_KEY_FILE or the node home; never created here. */
export async function operatorAccount(flag: string | undefined, config: Config): Promise<PrivateKeyAccount> {
  const keyFile = flag ?? config.GITBLOCK_NODE_KEY_FILE ?? join(config.GITBLOCK_NODE_HOME, 'operator.key');
  // Never create a key here: a new key has earned nothing and operates no node.
  if (!existsSync(keyFile)) throw new Error(`no operator key at ${keyFile}: start a node first (gitblock-node start) or give --key-file`);
  return (await loadOrCreateOperatorKey(keyFile)).account;
}

const errorSchema = z.object({ error: z.object({ message: z.string(), code: z.string().nullish() }) });

/** The gateway answered, but not with success; the message is the gateway's own. */
export class GatewayRefusedError extends BaseError<'GATEWAY_REFUSED'> {
  override name = 'GatewayRefusedError';
  constructor(
    message: string,
    readonly status: number,
    /** The API's error code, e.g. `conflict`, when the gateway sent one. */
    readonly apiCode: string | undefined,
  ) {
    super(message, { code: 'GATEWAY_REFUSED' });
  }
}

export interface CallOptions {
  method?: 'GET' | 'POST';
  /** Sent as JSON. */
  body?: unknown;
  fetchImpl?: typeof fetch;
}

/**
 * Calls the gateway and returns its JSON answer.
 *
 * @throws {GatewayRefusedError} for a non-2xx answer, with the gateway's message.
 * @throws {Error} when the gateway cannot be reached or does not answer within 15 s.
 */
export async function callGateway(gateway: string, path: string, options: CallOptions = {}): Promise<unknown> {
  let response: Response;
  let text: string;
  try {
    // One signal for the request and the body read, so a gateway that stalls mid-body times out too.
    const signal = AbortSignal.timeout(15_000);
    const headers: Record<string, string> = { accept: 'application/json', ...(options.body === undefined ? {} : { 'content-type': 'application/json' }) };
    const body = options.body === undefined ? null : JSON.stringify(options.body);
    response = await (options.fetchImpl ?? fetch)(`${gateway}${path}`, { method: options.method ?? 'GET', headers, body, signal });
    text = await response.text();
  } catch (err) {
    // undici hides the useful part ("ECONNREFUSED 127.0.0.1:8080") in `cause`.
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    throw new Error(`cannot reach the gateway at ${gateway}: ${cause ?? (err as Error).message}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!response.ok) {
    const parsed = errorSchema.safeParse(json);
    throw new GatewayRefusedError(
      `the gateway at ${gateway} answered ${response.status}: ${parsed.success ? parsed.data.error.message : text.slice(0, 200)}`,
      response.status,
      parsed.success ? (parsed.data.error.code ?? undefined) : undefined,
    );
  }
  return json;
}
