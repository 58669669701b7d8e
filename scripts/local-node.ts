/**
 * The GPU node `npm start` runs beside the network, as a child process it keeps alive: started
 * once (a first start that fails stops `npm start`, since retrying a missing model or a bad
 * flag would only repeat the error), then restarted whenever it dies, after a backoff that
 * doubles up to a ceiling and resets once a run has served for a while.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { getModel } from '../models/catalog.ts';

/**
 * Tokens per sequence for the local demo's node: its requests are a chat question or two, and a
 * model's full trained context (8,192 for SmolLM2, × 4 sequences) held 1.1 GiB for nothing.
 */
export const LOCAL_CONTEXT_SIZE = 2048;

/**
 * The arguments after `start` for `npm start`'s node. The context is sized for the demo unless
 * the operator chose one (GITBLOCK_NODE_CONTEXT_SIZE), which a flag would override.
 */
export function localNodeArgs(options: { model: string; edge: string; nodeId: string; contextSizeChosen: boolean }): string[] {
  const context = options.contextSizeChosen ? [] : ['--context-size', String(Math.min(LOCAL_CONTEXT_SIZE, getModel(options.model).contextLength))];
  return ['--models', options.model, '--edge', options.edge, '--node-id', options.nodeId, ...context];
}

export interface LocalNodeOptions {
  /** `bin/gitblock-node.mjs`. */
  bin: string;
  /** Arguments after `start`. */
  args: string[];
  env: NodeJS.ProcessEnv;
  say: (line: string) => void;
  /** First restart delay; doubled after each run that did not last `stableMs`, up to `maxBackoffMs`. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  stableMs?: number;
  /** How long `stop` waits after SIGTERM before SIGKILL: longer than the node's own shutdown grace. */
  stopGraceMs?: number;
}

interface Run {
  child: ChildProcess;
  startedAt: number;
  /** Resolves once, with how the process ended; set whether or not anyone listens yet. */
  exited: Promise<string>;
  ended: boolean;
  /** Resolves when the node says it serves through the edge. */
  serving: Promise<void>;
}

const servingLine = /serving .* through the edge/;

export class LocalNode {
  /** What the node reported it computes on, e.g. `cpu, 3.1 GiB free` or `cuda (NVIDIA H200), …`. */
  compute: string | undefined;
  private run: Run;
  private stopping = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private readonly killOnExit = () => {
    if (!this.run.ended) this.run.child.kill('SIGKILL');
  };

  private constructor(private readonly options: LocalNodeOptions) {
    this.run = this.spawnRun();
    // The node has its own process group, so a launcher that dies abruptly must take it along.
    process.on('exit', this.killOnExit);
  }

  /**
   * Starts the node and resolves once it serves through the edge.
   * @throws when it exits before serving, with how it ended.
   */
  static async start(options: LocalNodeOptions): Promise<LocalNode> {
    const node = new LocalNode(options);
    try {
      await node.untilServing(node.run);
    } catch (err) {
      node.stopping = true;
      process.removeListener('exit', node.killOnExit);
      throw err;
    }
    node.superviseRun(node.run);
    return node;
  }

  /** The current node process's id (a new one after each restart). */
  get pid(): number | undefined {
    return this.run.child.pid;
  }

  private spawnRun(): Run {
    // Its own process group: Ctrl-C reaches only the launcher, which then drains the node with one SIGTERM.
    const child = spawn(process.execPath, [this.options.bin, 'start', ...this.options.args], { env: this.options.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let served = () => {};
    const serving = new Promise<void>((resolve) => (served = resolve));
    const run: Run = { child, startedAt: Date.now(), ended: false, exited: Promise.resolve(''), serving };
    // Listen from the first moment: an 'exit' that fires before anyone awaits it is still seen
    // (waiting for a later 'exit' event is what hung Ctrl-C after the node had been killed).
    run.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        run.ended = true;
        resolve(signal ? `signal ${signal}` : `code ${code}`);
      });
      child.once('error', (err) => {
        run.ended = true;
        resolve(`could not start: ${err.message}`);
      });
    });
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        if (line.trim()) this.options.say(`  [node] ${line}`);
        if (servingLine.test(line)) served();
        const compute = /^Compute: (.+)$/.exec(line.trim());
        if (compute) this.compute = compute[1];
      });
    }
    if (child.pid !== undefined) this.options.say(`  [node] process ${child.pid}`);
    return run;
  }

  private untilServing(run: Run): Promise<void> {
    return Promise.race([
      run.serving,
      run.exited.then((how) => {
        throw new Error(`the GPU node exited (${how}) before serving`);
      }),
    ]);
  }

  private superviseRun(run: Run): void {
    // Supervision runs beside the caller; `exited` never rejects (it resolves with how the run ended).
    void run.exited.then((how) => {
      if (this.stopping || run !== this.run) return;
      // A run that served for a while was healthy: the next failure starts the backoff afresh.
      if (Date.now() - run.startedAt >= (this.options.stableMs ?? 60_000)) this.failures = 0;
      const delay = Math.min(this.options.maxBackoffMs ?? 30_000, (this.options.minBackoffMs ?? 1_000) * 2 ** this.failures);
      this.failures++;
      this.options.say(`  [node] exited (${how}); restarting it in ${(delay / 1000).toFixed(delay < 1000 ? 1 : 0)} s`);
      this.restartTimer = setTimeout(() => {
        this.restartTimer = undefined;
        if (this.stopping) return;
        this.run = this.spawnRun();
        this.superviseRun(this.run);
      }, delay);
    });
  }

  /** Stops supervising and drains the node (SIGTERM, then SIGKILL after the grace). */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const run = this.run;
    if (!run.ended) {
      run.child.kill('SIGTERM');
      const force = setTimeout(() => run.child.kill('SIGKILL'), this.options.stopGraceMs ?? 40_000);
      await run.exited;
      clearTimeout(force);
    }
    process.removeListener('exit', this.killOnExit);
  }
}
