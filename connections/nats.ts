import { connect, type NatsConnection } from '@nats-io/transport-node';

/**
 * Connects to NATS. Reconnects forever by default: a GPU node or gateway must ride out a
 * NATS restart rather than exit.
 */
export async function connectNats(url: string, name: string): Promise<NatsConnection> {
  return connect({ servers: url, name, timeout: 5_000, maxReconnectAttempts: -1, reconnectTimeWait: 500 });
}
