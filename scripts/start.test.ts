/**
 * `npm start` run for real: its node is restarted when it dies, and Ctrl-C stops everything
 * within seconds, even after the node was killed by a signal (which once hung the stop).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { portIsFree } from '../stack/ports.ts';
import { processAlive, startLauncher, type Launcher } from '../test/launcher.ts';

describe('npm start', () => {
  let launcher: Launcher | undefined;
  afterAll(async () => {
    await launcher?.dispose();
  });

  it('restarts its node when it dies, and stops cleanly on Ctrl-C afterwards', async () => {
    launcher = startLauncher();
    await launcher.waitFor(/GitBlock network is up/, 240_000);
    const first = Number((await launcher.waitFor(/\[node\] process (\d+)/))[1]);

    const before = launcher.output().length;
    process.kill(first, 'SIGKILL');
    await launcher.waitFor(/\[node\] exited \(signal SIGKILL\); restarting it in 1 s/, 10_000, before);
    const second = Number((await launcher.waitFor(/\[node\] process (\d+)/, 10_000, before))[1]);
    expect(second).not.toBe(first);
    await launcher.waitFor(/serving .* through the edge/, 60_000, before);

    const ports = launcher.ports();
    expect(ports.length).toBeGreaterThanOrEqual(7);
    const stopAsked = Date.now();
    launcher.child.kill('SIGINT');
    expect(await launcher.exited).toBe(0);
    expect(Date.now() - stopAsked).toBeLessThan(20_000);
    expect(processAlive(second)).toBe(false);
    for (const port of ports) expect({ port, free: await portIsFree(port) }).toEqual({ port, free: true });
  }, 360_000);
});
