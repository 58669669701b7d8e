/**
 * The JetStream resources the network shares. Created idempotently by whoever starts first
 * (gateway, control worker or GPU node), with the same configuration everywhere.
 */
import { jetstreamManager, RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { tokenStreamName, tokenSubjectPrefix } from '../domain/inference.ts';
import { heartbeatTtlMs, nodesBucket } from '../domain/heartbeat.ts';

/** Token chunks of every request, kept long enough for a failover or a slow reader, then dropped. */
export async function ensureTokenStream(nc: NatsConnection): Promise<JetStreamManager> {
  const jsm = await jetstreamManager(nc);
  const config = {
    name: tokenStreamName,
    subjects: [`${tokenSubjectPrefix}.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: nanos(30 * 60_000),
    // Direct get lets a continuing node read a request's chunks without creating a consumer.
    allow_direct: true,
  };
  try {
    await jsm.streams.info(tokenStreamName);
  } catch {
    try {
      await jsm.streams.add(config);
    } catch (err) {
      // Two processes starting together: the other one created it first.
      await jsm.streams.info(tokenStreamName).catch(() => {
        throw err;
      });
    }
  }
  return jsm;
}

/** The live-state bucket: one key per node, dropped by TTL when its heartbeats stop. */
export async function nodesKv(nc: NatsConnection): Promise<KV> {
  return new Kvm(nc).create(nodesBucket, { ttl: heartbeatTtlMs, history: 1 });
}
