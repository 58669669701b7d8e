/**
 * The control worker and the gateway as processes of their own, on the test stack and a test
 * file's database and control queue, so a test can SIGKILL them mid-work as a machine dies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stack } from './helpers.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface ServiceProcess {
  child: ChildProcess;
  output(): string;
  /** The exit code, or the signal that ended it. */
  exited: Promise<number | NodeJS.Signals | null>;
  /** What the ready line matched (the gateway's URL). */
  ready: RegExpExecArray;
  kill(signal?: NodeJS.Signals): Promise<number | NodeJS.Signals | null>;
}

export interface ServiceTarget {
  /** The test file's database name. */
  db: string;
  controlTaskQueue: string;
}

/** The stack's endpoints as the services' environment (config/env.ts), and nothing of the caller's own. */
function serviceEnv(target: ServiceTarget, extra: Record<string, string>): NodeJS.ProcessEnv {
  const s = stack();
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(TEMPORAL_|NATS_|MONGODB_|CHAIN_|GATEWAY_|EDGE_|GITBLOCK_)/.test(k)));
  return {
    ...inherited,
    TEMPORAL_ADDRESS: s.temporalAddress,
    TEMPORAL_NAMESPACE: s.temporalNamespace,
    MONGODB_URI: s.mongodbUri,
    MONGODB_DB: target.db,
    NATS_URL: s.natsUrl,
    CHAIN_RPC_URL: s.rpcUrl,
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

async function startService(name: string, script: string, args: string[], env: NodeJS.ProcessEnv, readyPattern: RegExp, timeoutMs: number): Promise<ServiceProcess> {
  // node --import tsx, not npx tsx: one process, so a signal reaches the service itself.
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, script), ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<number | NodeJS.Signals | null>((r) => child.once('exit', (code, signal) => r(code ?? signal)));
  const ready = await new Promise<RegExpExecArray>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} not ready in ${timeoutMs / 1000} s:\n${output.slice(-4000)}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = readyPattern.exec(output);
      if (m) {
        clearTimeout(timer);
        resolveReady(m);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before it was ready:\n${output.slice(-4000)}`));
    });
  }).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
  return {
    child,
    output: () => output,
    exited,
    ready,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** `npm run control` (workers/control-main.ts) on the test's queue, without the settlement Schedule. */
export function startControlProcess(target: ServiceTarget): Promise<ServiceProcess> {
  return startService('control worker', 'workers/control-main.ts', ['--task-queue', target.controlTaskQueue, '--no-schedule'], serviceEnv(target, {}), /control worker polling /, 120_000);
}

/** The gateway (test/gateway-main.ts) on `port` (0: any); `ready[1]` is its URL. */
export function startGatewayProcess(target: ServiceTarget, port = 0): Promise<ServiceProcess> {
  return startService('gateway', 'test/gateway-main.ts', [target.controlTaskQueue], serviceEnv(target, { GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: String(port) }), /gateway listening on (http:\/\/\S+)/, 120_000);
}
