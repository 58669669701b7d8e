/**
 * `npm start` run for real: its node is restarted when it dies, and Ctrl-C stops everything
 * within seconds, even after the node was killed by a signal (which once hung the stop). Its
 * gateway and edge ports are taken by another process, as by a second network on the machine.
 */
import { createServer, type Server } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { portIsFree } from '../stack/ports.ts';
import { processAlive, startLauncher, type Launcher } from '../test/launcher.ts';

describe('npm start', () => {
  let launcher: Launcher | undefined;
  const held: Server[] = [];
  afterAll(async () => {
    await launcher?.dispose();
    for (const server of held) server.close();
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

    const before = launcher.output().length;
    process.kill(first, 'SIGKILL');
    await launcher.waitFor(/\[node\] exited \(signal SIGKILL\); restarting it in 1 s/, 10_000, before);
    const second = Number((await launcher.waitFor(/\[node\] process (\d+)/, 10_000, before))[1]);
    expect(second).not.toBe(first);
    await launcher.waitFor(/serving .* through the edge/, 60_000, before);

    const ports = launcher.ports().filter((p) => p !== gatewayPort && p !== edgePort);
    expect(ports.length).toBeGreaterThanOrEqual(7);
    const stopAsked = Date.now();
    launcher.child.kill('SIGINT');
    expect(await launcher.exited).toBe(0);
    expect(Date.now() - stopAsked).toBeLessThan(20_000);
    expect(processAlive(second)).toBe(false);
    for (const port of ports) expect({ port, free: await portIsFree(port) }).toEqual({ port, free: true });
  }, 360_000);
});
