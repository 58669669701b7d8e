/**
 * Runs a real `gitblock-node start` process against the test stack, so tests can kill it
 * (SIGKILL mid-answer, SIGTERM for a graceful stop) like an operator's machine going away.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';

const bin = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'gitblock-node.mjs');
/** The same CLI with `--test-faults` (test/faulty-node.ts): the installed one has no such flag. */
const faultyBin = resolve(dirname(fileURLToPath(import.meta.url)), 'faulty-node.mjs');

export interface NodeProcess {
  nodeId: string;
  /** What it was started with, its state folder included: starting again from these is the same node restarting. */
  options: NodeProcessOptions & { home: string };
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface NodeProcessOptions {
  nodeId: string;
  /** host:port of the edge the node joins through: its only address. */
  edge: string;
  models?: string;
  maxParallel?: number;
  extraArgs?: string[];
  /** Wait for this line before resolving (default: the serving line). */
  readyPattern?: RegExp;
  env?: Record<string, string>;
  /** The node's state folder (its operator key): a new one when not given; the same one restarts the same node. */
  home?: string;
}

/** The arguments that point a node at the test stack, with its own key and state folder. */
export function nodeArgs(options: NodeProcessOptions): { args: string[]; env: Record<string, string>; home: string } {
  const home = options.home ?? mkdtempSync(join(tmpdir(), `gitblock-node-${options.nodeId}-`));
  return {
    home,
    args: [
      'start',
      '--models', options.models ?? 'gitblock-tiny',
      '--gpu', 'cpu',
      '--edge', options.edge,
      '--node-id', options.nodeId,
      '--key-file', join(home, 'operator.key'),
      '--model-dir', dirname(inject('fixtureModelPath')),
      '--max-parallel', String(options.maxParallel ?? 2),
      '--threads', '1',
      '--shutdown-grace', '10',
      ...(options.extraArgs ?? []),
    ],
    env: { GITBLOCK_NODE_HOME: home, ...options.env },
  };
}

export function runNodeCli(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [args.includes('--test-faults') ? faultyBin : bin, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one `gitblock-node` command to its end and returns its exit code and output. */
export function runNodeCliToEnd(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const child = runNodeCli(args, env);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

export async function startNodeProcess(options: NodeProcessOptions): Promise<NodeProcess> {
  const { args, env, home } = nodeArgs(options);
  const child = runNodeCli(args, env);
  let output = '';
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  await new Promise<void>((resolveReady, reject) => {
    const pattern = options.readyPattern ?? /serving .* through the edge/;
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (pattern.test(output)) resolveReady();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => reject(new Error(`gitblock-node ${options.nodeId} exited (${code}) before it was ready:\n${output}`)));
    setTimeout(() => reject(new Error(`gitblock-node ${options.nodeId} not ready in 60 s:\n${output}`)), 60_000).unref();
  });
  return {
    nodeId: options.nodeId,
    options: { ...options, home },
    child,
    output: () => output,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
