/**
 * `gitblock-node status`: this operator's nodes as the network sees them, asked of the gateway
 * (a node holds no NATS or Temporal credentials, so the gateway's public view is what an operator
 * can read): each node's registered operator, state, liveness and record. With `--node-id`, that
 * one node, whoever operates it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Address } from 'viem';
import { z } from 'zod';
import type { Config } from '../../../config/env.ts';
import { loadOrCreateOperatorKey } from '../identity.ts';
import { callGateway, GatewayRefusedError, gatewayUrl } from './gateway.ts';

export interface StatusFlags {
  gateway?: string;
  keyFile?: string;
  nodeId?: string;
  json?: boolean;
}

/** The part of the gateway's public node view (`GET /v1/nodes`) that status shows. */
const nodeSchema = z.object({
  id: z.string(),
  operator: z.string(),
  models: z.array(z.string()),
  state: z.string(),
  reputation: z.number(),
  live: z.boolean(),
  requests_served: z.number(),
  failures: z.number(),
  verification_passes: z.number(),
  verification_failures: z.number(),
  uptime: z.number().nullable(),
});
export type NodeView = z.infer<typeof nodeSchema>;
const listSchema = z.object({ data: z.array(nodeSchema) });

function parse<T>(schema: z.ZodType<T>, body: unknown, gateway: string): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new Error(`the gateway at ${gateway} sent an unexpected node list: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

/** One node, several lines: for `--node-id`. */
export function formatNode(n: NodeView, localOperator: Address | undefined): string {
  const theirs = localOperator && n.operator.toLowerCase() !== localOperator.toLowerCase() ? `  (not this machine's key, ${localOperator})` : '';
  return [
    `node        ${n.id}`,
    `operator    ${n.operator}${theirs}`,
    `state       ${n.state}`,
    `live        ${n.live ? 'yes, heartbeat on the network' : 'no heartbeat on the network'}`,
    `models      ${n.models.join(', ')}`,
    `reputation  ${n.reputation}`,
    `record      ${n.requests_served} served, ${n.failures} failed, checks ${n.verification_passes} passed / ${n.verification_failures} failed${n.uptime === null ? '' : `, uptime ${(n.uptime * 100).toFixed(1)} %`}`,
  ].join('\n');
}

/** A table, one row per node: for an operator's list. */
export function formatNodeTable(nodes: NodeView[]): string {
  const rows = [['node', 'state', 'live', 'reputation', 'served', 'models'], ...nodes.map((n) => [n.id, n.state, n.live ? 'yes' : 'no', String(n.reputation), String(n.requests_served), n.models.join(',')])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n');
}

export async function statusCommand(flags: StatusFlags, config: Config): Promise<void> {
  const gateway = gatewayUrl(flags.gateway, config);
  const keyFile = flags.keyFile ?? config.GITBLOCK_NODE_KEY_FILE ?? join(config.GITBLOCK_NODE_HOME, 'operator.key');
  // Never create a key here: status only reads.
  const operator = existsSync(keyFile) ? (await loadOrCreateOperatorKey(keyFile)).account.address : undefined;
  const nodeId = flags.nodeId ?? config.GITBLOCK_NODE_ID;

  if (nodeId) {
    let node: NodeView;
    try {
      node = parse(nodeSchema, await callGateway(gateway, `/v1/nodes/${encodeURIComponent(nodeId)}`), gateway);
    } catch (err) {
      if (err instanceof GatewayRefusedError && err.status === 404) throw new Error(`node ${nodeId} is not registered with the network at ${gateway}`, { cause: err });
      throw err;
    }
    console.log(flags.json ? JSON.stringify(node, null, 2) : formatNode(node, operator));
    return;
  }
  if (!operator) {
    console.log(`This machine has not started a node yet (no operator key at ${keyFile}): run \`gitblock-node start --models <ids>\`, or give --key-file or --node-id.`);
    return;
  }
  const { data } = parse(listSchema, await callGateway(gateway, `/v1/nodes?operator=${operator}`), gateway);
  if (flags.json) {
    console.log(JSON.stringify({ operator, gateway, nodes: data }, null, 2));
    return;
  }
  const head = `operator  ${operator}  (key ${keyFile})\ngateway   ${gateway}`;
  if (data.length === 0) {
    console.log(`${head}\n\nNo node of this operator is registered there: start one with \`gitblock-node start --models <ids>\`.`);
    return;
  }
  const live = data.filter((n) => n.live).length;
  console.log(`${head}\n\n${data.length} node${data.length === 1 ? '' : 's'}, ${live} live:\n${formatNodeTable(data)}`);
}
