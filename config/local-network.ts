/**
 * Where `npm start`'s network is: the endpoints and epoch schedule it chose, written to
 * `<data dir>/endpoints.json` while it runs and removed when it stops, so that this checkout's
 * commands (`gitblock-node`, `npm run settle`) reach that network by default instead of fixed
 * ports that may belong to another. Only addresses: no credentials go in the file.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

export const localNetworkSchema = z.object({
  /** The launcher's process: a file left by one that died is ignored. */
  pid: z.number().int().positive(),
  gatewayUrl: z.url(),
  edge: z.string().regex(/^[\w.-]+:\d{1,5}$/),
  temporalAddress: z.string().regex(/^[\w.-]+:\d{1,5}$/),
  temporalNamespace: z.string().min(1),
  rpcUrl: z.url(),
  genesis: z.number().int().min(0),
  epochSeconds: z.number().int().min(1),
});
export type LocalNetwork = z.infer<typeof localNetworkSchema>;

export function localNetworkFile(dataDir: string): string {
  return join(dataDir, 'endpoints.json');
}

export function writeLocalNetwork(dataDir: string, network: LocalNetwork): void {
  writeFileSync(localNetworkFile(dataDir), `${JSON.stringify(network, null, 2)}\n`);
}

/** Removes the file if it is this launcher's (a second launcher on the same folder keeps its own). */
export function removeLocalNetwork(dataDir: string, pid: number): void {
  if (readLocalNetwork(dataDir, () => true)?.pid === pid) rmSync(localNetworkFile(dataDir), { force: true });
}

/** True while a process with this id exists (EPERM: it exists, under another user). */
export function processRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The running network's file, or undefined when there is none, it is unreadable, or its launcher is gone. */
export function readLocalNetwork(dataDir: string, alive: (pid: number) => boolean = processRunning): LocalNetwork | undefined {
  const file = localNetworkFile(dataDir);
  if (!existsSync(file)) return undefined;
  try {
    const parsed = localNetworkSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    return parsed.success && alive(parsed.data.pid) ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** The file's values as the environment variables they default. */
export function localNetworkAsEnv(network: LocalNetwork): Record<string, string> {
  return {
    GITBLOCK_GATEWAY_URL: network.gatewayUrl,
    GITBLOCK_EDGE: network.edge,
    TEMPORAL_ADDRESS: network.temporalAddress,
    TEMPORAL_NAMESPACE: network.temporalNamespace,
    CHAIN_RPC_URL: network.rpcUrl,
    GITBLOCK_GENESIS: String(network.genesis),
    GITBLOCK_EPOCH_SECONDS: String(network.epochSeconds),
  };
}
