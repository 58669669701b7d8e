import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../../config/env.ts';
import { connectNats } from '../../../connections/nats.ts';
import { nodesKv } from '../../../connections/streams.ts';
import { heartbeatKey, heartbeatSchema } from '../../../domain/heartbeat.ts';
import { loadOrCreateOperatorKey } from '../identity.ts';

export async function statusCommand(flags: { nats?: string; keyFile?: string; nodeId?: string }, config: Config): Promise<void> {
  const keyFile = flags.keyFile ?? config.GITBLOCK_NODE_KEY_FILE ?? join(config.GITBLOCK_NODE_HOME, 'operator.key');
  const idFile = join(config.GITBLOCK_NODE_HOME, 'node-id');
  const nodeId = flags.nodeId ?? config.GITBLOCK_NODE_ID ?? (existsSync(idFile) ? readFileSync(idFile, 'utf8').trim() : undefined);
  if (!existsSync(keyFile)) {
    console.log('This machine has not started a node yet: run `gitblock-node start --models <ids>`.');
    return;
  }
  if (!nodeId) {
    // A node started with --node-id (as `npm start` does) keeps no id file.
    console.log(`No node id is recorded in ${config.GITBLOCK_NODE_HOME}: if the node was started with --node-id, run \`gitblock-node status --node-id <id>\`.`);
    return;
  }
  const { account } = await loadOrCreateOperatorKey(keyFile);
  console.log(`node      ${nodeId}\noperator  ${account.address}\nkey file  ${keyFile}`);
  const nats = flags.nats ?? config.NATS_URL;
  let nc;
  try {
    nc = await connectNats(nats, 'gitblock-node status');
  } catch (err) {
    console.log(`live      unknown: cannot reach NATS at ${nats} (${(err as Error).message})`);
    return;
  }
  try {
    const entry = await (await nodesKv(nc)).get(heartbeatKey(nodeId));
    const parsed = entry?.operation === 'PUT' ? heartbeatSchema.safeParse(entry.json()) : undefined;
    if (!parsed?.success) {
      console.log('live      offline (no heartbeat on the network)');
      return;
    }
    const h = parsed.data;
    console.log(
      [
        `live      ${h.status}, last heartbeat ${((Date.now() - h.at) / 1000).toFixed(0)} s ago`,
        `compute   ${h.gpu.backend}${h.gpu.devices.length ? ` (${h.gpu.devices.join(', ')})` : ''}, ${(h.freeMemoryBytes / 2 ** 30).toFixed(1)} GiB free`,
        `models    ${h.models.map((m) => `${m.id} (${m.slots} × ${m.contextSize})`).join(', ')}`,
        `load      ${h.inFlight} in flight, ${h.freeSlots} of ${h.maxParallel} slots free, ${h.recentTokensPerSecond.toFixed(1)} tok/s recently`,
      ].join('\n'),
    );
  } finally {
    await nc.close();
  }
}
