/**
 * `npm start` run for real: its node is restarted when it dies, and Ctrl-C stops everything
 * within seconds, even after the node was killed by a signal (which once hung the stop). Its
 * gateway and edge ports are taken by another process, as by a second network on the machine.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { defaultEpochSchedule, epochAt } from '../domain/emission.ts';
import { portIsFree } from '../stack/ports.ts';
import { processAlive, startLauncher, type Launcher } from '../test/launcher.ts';
import { runNodeCliToEnd as cli } from '../test/node-process.ts';

describe('npm start', () => {
  let launcher: Launcher | undefined;
  const held: Server[] = [];
  afterAll(async () => {
    await launcher?.dispose();
    for (const server of held) server.close();
  });
  afterEach(async () => {
    await launcher?.dispose();
    launcher = undefined;
  });

  async function holdPort(): Promise<number> {
    const server = createServer();
    held.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return (server.address() as { port: number }).port;
  }

  it('binds elsewhere when its ports are taken, restarts its node when it dies, and stops cleanly on Ctrl-C afterwards', async () => {
    const gatewayPort = await holdPort();
    const edgePort = await holdPort();
    launcher = startLauncher([], { GATEWAY_PORT: String(gatewayPort), EDGE_PORT: String(edgePort) });
    await launcher.waitFor(/GitBlock network is up/, 240_000);
    expect(launcher.output()).toContain(`gateway: port ${gatewayPort} is taken; using another`);
    expect(launcher.output()).toContain(`edge: port ${edgePort} is taken; using another`);
    const api = (await launcher.waitFor(/OpenAI-compatible API: (http:\/\/127\.0\.0\.1:\d+)\/v1/))[1]!;
    expect(new URL(api).port).not.toBe(String(gatewayPort));
    expect((await fetch(`${api}/v1/nodes`)).status).toBe(200);
    const first = Number((await launcher.waitFor(/\[node\] process (\d+)/))[1]);
    // What it runs on, said plainly (no "GPU node" on a CPU), with a context sized for the demo.
    expect(launcher.output()).toMatch(/^Starting a node with gitblock-tiny, on a GPU if it finds one, else the CPU/m);
    expect(launcher.output()).toMatch(/^ {2}\[node\] Compute: cpu, [\d.]+ GiB free$/m);
    expect(launcher.output()).toMatch(/^ {2}\[node\] Loaded gitblock-tiny: 2 × 2048 tokens/m);
    expect(launcher.output()).toMatch(/^Node local-node-1 serves gitblock-tiny on cpu, [\d.]+ GiB free\.$/m);

    const before = launcher.output().length;
    process.kill(first, 'SIGKILL');
    await launcher.waitFor(/\[node\] exited \(signal SIGKILL\); restarting it in 1 s/, 10_000, before);
    const second = Number((await launcher.waitFor(/\[node\] process (\d+)/, 10_000, before))[1]);
    expect(second).not.toBe(first);
    await launcher.waitFor(/serving .* through the edge/, 60_000, before);

    // A refused settlement by hand: one line from settle, and one line (no stack) in npm start's terminal.
    const current = epochAt(Date.now(), defaultEpochSchedule);
    const mark = launcher.output().length;
    const refused = await runToEnd(process.execPath, ['--import', 'tsx', 'workers/settle.ts', '--epoch', String(current)], { GITBLOCK_DATA_DIR: launcher.dataDir });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(new RegExp(`^settle: settle-${current} failed: epoch ${current} runs until \\S+; it can be settled after that \\(EPOCH_NOT_OVER\\)\n$`));
    await launcher.waitFor(/EPOCH_NOT_OVER/, 10_000, mark);
    await new Promise((r) => setTimeout(r, 1_000));
    const logged = launcher.output().slice(mark);
    expect(logged).not.toMatch(/^\s+at /m);
    for (const line of logged.split('\n').filter((l) => l.includes('EPOCH_NOT_OVER'))) expect(line).toMatch(/^\[temporal\] WARN .*: epoch \d+ runs until \S+; it can be settled after that \(EPOCH_NOT_OVER\)$/);

    const ports = launcher.ports().filter((p) => p !== gatewayPort && p !== edgePort);
    expect(ports.length).toBeGreaterThanOrEqual(7);
    const stopAsked = Date.now();
    launcher.child.kill('SIGINT');
    expect(await launcher.exited).toBe(0);
    expect(Date.now() - stopAsked).toBeLessThan(20_000);
    expect(processAlive(second)).toBe(false);
    for (const port of ports) expect({ port, free: await portIsFree(port) }).toEqual({ port, free: true });
  }, 360_000);

  // The README's recipe, as written there: serve, settle, claim, see the balance.
  it('runs the whole reward cycle in minutes with --epoch: serve, settle, claim, balance', async () => {
    launcher = startLauncher(['--epoch', '1m']);
    await launcher.waitFor(/GitBlock network is up/, 240_000);
    expect(launcher.output()).toMatch(/^Epochs of 1 min: epoch \d+ ends at \S+Z, and each settles 15 s after its end\.$/m);
    const operator = (await launcher.waitFor(/faucet: gave operator (0x[0-9a-fA-F]{40}) 10 ETH for gas/, 30_000))[1]!;
    const api = (await launcher.waitFor(/OpenAI-compatible API: (http:\/\/127\.0\.0\.1:\d+)\/v1/))[1]!;
    const key = (await launcher.waitFor(/Bearer (\S+)"/))[1]!;

    const answer = await fetch(`${api}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gitblock-tiny', messages: [{ role: 'user', content: 'What is the capital of France?' }], max_tokens: 16 }),
    });
    expect(answer.status).toBe(200);

    // The commands as the README gives them, without flags: this machine's operator key, and the
    // network npm start wrote to <data dir>/endpoints.json (here on ports other than the defaults).
    const env = { GITBLOCK_NODE_HOME: launcher.nodeHome, GITBLOCK_DATA_DIR: launcher.dataDir };
    const deadline = Date.now() + 180_000;
    let rewards: { operator: string; claimable: string } | undefined;
    while (Date.now() < deadline) {
      const shown = await cli(['rewards', '--json'], env);
      expect(shown.stderr).toBe('');
      rewards = JSON.parse(shown.stdout) as { operator: string; claimable: string };
      if (BigInt(rewards.claimable) > 0n) break;
      await new Promise((r) => setTimeout(r, 5_000));
    }
    expect(rewards!.operator).toBe(operator);
    expect(BigInt(rewards!.claimable)).toBeGreaterThan(0n);

    const claimed = await cli(['rewards', 'claim'], env);
    expect(claimed.stderr).toBe('');
    expect(claimed.code).toBe(0);
    expect(claimed.stdout).toMatch(/^epoch \d+: claimed [\d.]+ GBT in tx 0x[0-9a-f]{64}$/m);
    expect(claimed.stdout).toMatch(new RegExp(`^balance [\\d.]+ GBT at ${operator} \\(GBT token 0x[0-9a-fA-F]{40}\\)$`, 'm'));

    // By hand, `npm run settle -- --last` finds this network's Temporal and its 1-minute epochs.
    const settled = await runToEnd(process.execPath, ['--import', 'tsx', 'workers/settle.ts', '--last'], env);
    expect(settled.stderr).toBe('');
    expect(settled.code).toBe(0);
    expect(settled.stdout).toMatch(/^epoch \d+: settled/m);

    launcher.child.kill('SIGINT');
    expect(await launcher.exited).toBe(0);
    expect(existsSync(join(launcher.dataDir, 'endpoints.json'))).toBe(false);
  }, 600_000);
});

function runToEnd(command: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}
