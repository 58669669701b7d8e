import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
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
