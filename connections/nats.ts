import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Config } from '../config/env.ts';

/** Where NATS is and who we are to it: the config's NATS settings, or a bare URL. */
export type NatsTarget = string | Pick<Config, 'NATS_URL' | 'NATS_USER' | 'NATS_PASSWORD'>;

/** The server, without credentials, and the credentials, as nats.js options. */
export interface NatsServerOptions {
  servers: string;
  user?: string;
  pass?: string;
  token?: string;
}

/**
 * The server and credentials options for a NATS connection. Credentials may ride in the URL
 * (`nats://user:pass@host:4222`, or `nats://token@host:4222`, as other NATS clients read it),
 * or come as NATS_USER/NATS_PASSWORD. The URL's are taken out here because nats.js 3 drops
 * them silently, and a password of digits can even be misread as the port.
 */
export function natsConnectionOptions(target: NatsTarget): NatsServerOptions {
  const settings = typeof target === 'string' ? { NATS_URL: target } : target;
  const url = new URL(settings.NATS_URL);
  const servers = `${url.protocol}//${url.host}`;
  const user = decodeURIComponent(url.username);
  const pass = decodeURIComponent(url.password);
  if (user && url.password) return { servers, user, pass };
  if (user) return { servers, token: user };
  if (settings.NATS_USER !== undefined && settings.NATS_PASSWORD !== undefined) {
    return { servers, user: settings.NATS_USER, pass: settings.NATS_PASSWORD };
  }
  return { servers };
}

/** The URL with any password or token masked, for messages and logs. */
export function redactNatsUrl(value: string): string {
  try {
    const url = new URL(value);
    if (!url.username && !url.password) return value;
    if (url.password) url.password = '***';
    else url.username = '***';
    return url.toString().replace(/\/$/, '');
  } catch {
    return '(not a URL)';
  }
}

/**
 * Connects to NATS. Reconnects forever by default: a GPU node or gateway must ride out a
 * NATS restart rather than exit. Refused credentials reject at once with nats.js's
 * `AuthorizationError`, never retried.
 *
 * @example
 * const nc = await connectNats(config, 'gitblock-gateway'); // NATS_URL, NATS_USER, NATS_PASSWORD
 * const nc = await connectNats(stack.endpoints.natsUrl, 'test'); // credentials in the URL
 */
export async function connectNats(target: NatsTarget, name: string): Promise<NatsConnection> {
  return connect({ ...natsConnectionOptions(target), name, timeout: 5_000, maxReconnectAttempts: -1, reconnectTimeWait: 500 });
}
