/** The heartbeat view against the real NATS JetStream key-value store of the test stack. */
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats } from '../connections/nats.ts';
import { heartbeatIntervalMs, heartbeatTtlMs, type Heartbeat } from '../domain/heartbeat.ts';
import { stack, unique } from '../test/helpers.ts';
import { LiveNodes } from './live-nodes.ts';

let nc: NatsConnection;
const views: LiveNodes[] = [];

beforeAll(async () => {
  nc = await connectNats(stack().natsUrl, 'live-nodes-test');
});
afterAll(async () => {
  for (const view of views) view.stop();
  await nc?.close();
});

function heartbeat(nodeId: string, modelId = 'gitblock-tiny'): Heartbeat {
  return {
    nodeId,
    operator: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8',
    version: '0.1.0',
    status: 'serving',
    gpu: { backend: 'cpu', devices: [] },
    models: [{ id: modelId, hash: 'a'.repeat(64), contextSize: 1024, slots: 2 }],
    maxParallel: 2,
    inFlight: 0,
    freeSlots: 2,
    recentTokensPerSecond: 0,
    freeMemoryBytes: 1,
    at: Date.now(),
  };
}

async function bucket(): Promise<KV> {
  return new Kvm(nc).create(unique('live').replace(/-/g, '_'), { ttl: heartbeatTtlMs, history: 1 });
}

function view(kv: KV): LiveNodes {
  const v = new LiveNodes(kv);
  views.push(v);
  return v;
}

/** Milliseconds until the view has read the bucket, failing past the heartbeat-interval fallback. */
async function readyIn(v: LiveNodes): Promise<number> {
  const started = Date.now();
  await v.whenReady();
  return Date.now() - started;
}

describe('LiveNodes', () => {
  it('is ready as soon as it has read a bucket that already holds heartbeats, and lists them by model', async () => {
    const kv = await bucket();
    await kv.put('node-a', JSON.stringify(heartbeat('node-a')));
    await kv.put('node-b', JSON.stringify(heartbeat('node-b', 'smollm2-135m')));
    const v = view(kv);
    // Well before the fallback: the end of the replay was recognised.
    expect(await readyIn(v)).toBeLessThan(heartbeatIntervalMs);
    expect(v.list().map((n) => n.heartbeat.nodeId).sort()).toEqual(['node-a', 'node-b']);
    expect(v.list('gitblock-tiny').map((n) => n.heartbeat.nodeId)).toEqual(['node-a']);
  });

  it('is ready at once on an empty bucket, then follows puts and deletes', async () => {
    const kv = await bucket();
    const v = view(kv);
    expect(await readyIn(v)).toBeLessThan(heartbeatIntervalMs);
    expect(v.list()).toEqual([]);
    await kv.put('node-c', JSON.stringify(heartbeat('node-c')));
    await expect.poll(() => v.get('node-c')?.heartbeat.nodeId).toBe('node-c');
    await kv.delete('node-c');
    await expect.poll(() => v.get('node-c')).toBeUndefined();
  });

  it('ignores entries that do not parse or claim another node’s key', async () => {
    const kv = await bucket();
    await kv.put('node-d', JSON.stringify(heartbeat('node-e')));
    await kv.put('node-f', '{"nodeId":"node-f"}');
    await kv.put('node-g', JSON.stringify(heartbeat('node-g')));
    const v = view(kv);
    await v.whenReady();
    expect(v.list().map((n) => n.heartbeat.nodeId)).toEqual(['node-g']);
    expect(v.rejected).toBe(2);
  });

  it('keeps trying when its watch cannot start, and follows the bucket once it answers', async () => {
    const name = unique('live').replace(/-/g, '_');
    const kvm = new Kvm(nc);
    const kv = await kvm.create(name, { ttl: heartbeatTtlMs, history: 1 });
    // JetStream cannot serve the watch (here: the stream behind the bucket is gone; in the field:
    // NATS just started, or hung). Nothing may crash: an unhandled rejection fails this file.
    await kv.destroy();
    const v = new LiveNodes(kv, Date.now, 100);
    views.push(v);
    await expect.poll(() => v.rewatches, { timeout: 10_000 }).toBeGreaterThan(1);
    expect(v.list()).toEqual([]);
    // The bucket is back: the view follows it.
    const again = await kvm.create(name, { ttl: heartbeatTtlMs, history: 1 });
    await again.put('node-i', JSON.stringify(heartbeat('node-i')));
    await expect.poll(() => v.get('node-i')?.heartbeat.nodeId, { timeout: 10_000 }).toBe('node-i');
    await v.whenReady();
  });
});
