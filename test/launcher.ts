/**
 * Runs `npm start` (scripts/start.ts) for real, as its own process, in a temporary data folder,
 * with its node serving the tiny fixture model on the CPU: what a newcomer runs, minus the
 * download. Its stack is its own (not the test run's), on default ports where free.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface Launcher {
  child: ChildProcess;
  dataDir: string;
  nodeHome: string;
  output: () => string;
  /** Resolves with the exit code (or signal) when the launcher ends. */
  exited: Promise<number | NodeJS.Signals | null>;
  /** Resolves when `pattern` appears in the output after `from` characters; rejects on exit or timeout. */
  waitFor(pattern: RegExp, timeoutMs?: number, from?: number): Promise<RegExpExecArray>;
  /** Every 127.0.0.1 port the launcher printed. */
  ports(): number[];
  /** Stops the launcher if still running (SIGINT, then SIGKILL), and removes its folders. */
  dispose(): Promise<void>;
}

export function startLauncher(args: string[] = [], env: Record<string, string> = {}): Launcher {
  const dataDir = mkdtempSync(join(tmpdir(), 'gitblock-start-'));
  const nodeHome = mkdtempSync(join(tmpdir(), 'gitblock-start-home-'));
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(TEMPORAL_|NATS_|MONGODB_|CHAIN_|GATEWAY_|EDGE_|GITBLOCK_)/.test(k)));
  // node --import tsx, not npx tsx: one process, so signals reach the launcher itself.
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'scripts', 'start.ts'), ...args], {
    cwd: root,
    env: {
      ...inherited,
      GITBLOCK_DATA_DIR: dataDir,
      GITBLOCK_NODE_HOME: nodeHome,
      GITBLOCK_START_MODEL: 'gitblock-tiny',
      GITBLOCK_MODEL_DIR: dirname(inject('fixtureModelPath')),
      GITBLOCK_NODE_GPU: 'cpu',
      GITBLOCK_NODE_THREADS: '1',
      GITBLOCK_NODE_MAX_PARALLEL: '2',
      GITBLOCK_NODE_SHUTDOWN_GRACE: '5',
      // Port 0: the gateway and the edge take whatever the OS gives, and print it.
      GATEWAY_PORT: '0',
      EDGE_PORT: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    output += d.toString();
    for (const l of listeners) l();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<number | NodeJS.Signals | null>((r) => child.once('exit', (code, signal) => r(code ?? signal)));
  let ended = false;
  void exited.then(() => {
    ended = true;
    for (const l of listeners) l();
  });

  return {
    child,
    dataDir,
    nodeHome,
    output: () => output,
    exited,
    waitFor(pattern, timeoutMs = 120_000, from = 0) {
      return new Promise((resolveMatch, reject) => {
        const check = () => {
          const m = pattern.exec(output.slice(from));
          if (m) {
            done();
            resolveMatch(m);
          } else if (ended) {
            done();
            reject(new Error(`the launcher exited before ${pattern}:\n${output.slice(-4000)}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no ${pattern} within ${timeoutMs / 1000} s:\n${output.slice(-4000)}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    ports() {
      return [...new Set([...output.matchAll(/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1])))];
    },
    async dispose() {
      if (!ended) {
        child.kill('SIGINT');
        const force = setTimeout(() => child.kill('SIGKILL'), 30_000);
        await exited;
        clearTimeout(force);
      }
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(nodeHome, { recursive: true, force: true });
    },
  };
}

export { processRunning as processAlive } from '../config/local-network.ts';
