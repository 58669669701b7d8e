import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import { describe, expect, inject, it } from 'vitest';
import { portIsFree } from './ports.ts';
import { ServiceError } from './process.ts';
import { startStack } from './stack.ts';
import { natsReady } from './services.ts';
import { natsCredentials } from './credentials.ts';

describe('the stack launcher', () => {
  it('reports a service that dies, by name and with its log, and stops the rest cleanly', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gitblock-stack-test-'));
    try {
      const stack = await startStack({ dataDir, ports: 'random', say: () => {} });
      const failed = new Promise<ServiceError>((resolve) => stack.onServiceFailure(resolve));
      await natsReady(stack.endpoints.natsUrl);
      // NATS takes the data dir's credentials, and the endpoints carry them.
      const { user, password } = natsCredentials(dataDir);
      expect(stack.endpoints.natsUrl).toMatch(new RegExp(`^nats://${user}:${password}@127\\.0\\.0\\.1:\\d+$`));
      await expect(natsReady(stack.endpoints.natsUrl.replace(`${user}:${password}@`, ''))).rejects.toMatchObject({ name: 'AuthorizationError' });

      stack.process('nats')!.child.kill('SIGKILL');
      const error = await failed;

      expect(error).toBeInstanceOf(ServiceError);
      expect(error.service).toBe('nats');
      expect(error.message).toMatch(/^nats exited unexpectedly \(exited with signal SIGKILL\)/);
      expect(error.message).toContain(join(dataDir, 'logs', 'nats.log'));

      await stack.stop();
      for (const name of ['temporal', 'mongodb', 'anvil'] as const) expect(stack.process(name)!.running).toBe(false);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('starts a service again on fresh ports when its port is taken between the choice and the bind', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gitblock-stack-test-'));
    // Two kinds of thief: a bare socket, and another network's live service of the same kind,
    // which answers the readiness check while ours has failed to bind.
    const held: Server = createServer();
    await new Promise<void>((r) => held.listen(0, '127.0.0.1', () => r()));
    const heldPort = (held.address() as { port: number }).port;
    const other = inject('stack');
    const port = (address: string) => Number(new URL(address.includes('://') ? address : `x://${address}`).port);
    const said: string[] = [];
    try {
      const stack = await startStack({
        dataDir,
        ports: 'random',
        portOverrides: { nats: heldPort, anvil: port(other.rpcUrl), temporal: port(other.temporalAddress) },
        say: (line) => said.push(line),
      });
      try {
        const e = stack.endpoints;
        expect(port(e.natsUrl)).not.toBe(heldPort);
        expect(port(e.rpcUrl)).not.toBe(port(other.rpcUrl));
        expect(port(e.temporalAddress)).not.toBe(port(other.temporalAddress));
        for (const name of ['nats', 'anvil', 'temporal']) expect(said.join('\n')).toMatch(new RegExp(`^${name}: port \\d+.* was taken before it could bind; starting it again on \\d+`, 'm'));
        // Ours answer on their new ports: the other network's services are not mistaken for them.
        await natsReady(e.natsUrl);
        for (const name of ['nats', 'anvil', 'temporal', 'mongodb'] as const) expect(stack.process(name)!.running, name).toBe(true);
      } finally {
        await stack.stop();
      }
      expect(await portIsFree(heldPort)).toBe(false);
    } finally {
      held.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 180_000);

  it('refuses a MONGODB_URI that does not answer, naming the service', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gitblock-stack-test-'));
    try {
      const started = startStack({ dataDir, ports: 'random', mongodbUri: 'mongodb://127.0.0.1:1/', say: () => {} });
      await expect(started).rejects.toMatchObject({ service: 'mongodb', message: expect.stringMatching(/MONGODB_URI is set but MongoDB does not answer/) });
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
