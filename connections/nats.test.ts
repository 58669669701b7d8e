/**
 * NATS takes credentials: what a client without them, or with wrong ones, gets from the test
 * stack's real nats-server, and how connectNats reads them from the URL or the config.
 */
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/env.ts';
import { stack, unique } from '../test/helpers.ts';
import { connectNats, natsConnectionOptions, redactNatsUrl } from './nats.ts';

function withPassword(natsUrl: string, password: string): string {
  const url = new URL(natsUrl);
  url.password = password;
  return url.toString();
}

describe('NATS credentials', () => {
  it('reads user and password from the URL, decoded, and keeps them out of the server address', () => {
    expect(natsConnectionOptions('nats://gitblock:p%40ss%3A4222@10.0.0.5:4222')).toEqual({ servers: 'nats://10.0.0.5:4222', user: 'gitblock', pass: 'p@ss:4222' });
    expect(natsConnectionOptions('nats://s3cret-token@nats:4222')).toEqual({ servers: 'nats://nats:4222', token: 's3cret-token' });
    expect(natsConnectionOptions('tls://nats.example:4443')).toEqual({ servers: 'tls://nats.example:4443' });
  });

  it('takes NATS_USER and NATS_PASSWORD from the config', () => {
    const config = parseConfig({ NATS_URL: 'nats://nats:4222', NATS_USER: 'gitblock', NATS_PASSWORD: 'pw' });
    expect(natsConnectionOptions(config)).toEqual({ servers: 'nats://nats:4222', user: 'gitblock', pass: 'pw' });
    expect(natsConnectionOptions(parseConfig({}))).toEqual({ servers: 'nats://127.0.0.1:4222' });
  });

  it('masks the password or token of a URL shown in messages', () => {
    expect(redactNatsUrl('nats://gitblock:hunter2@127.0.0.1:4222')).toBe('nats://gitblock:***@127.0.0.1:4222');
    expect(redactNatsUrl('nats://s3cret@nats:4222')).toBe('nats://***@nats:4222');
    expect(redactNatsUrl('nats://nats:4222')).toBe('nats://nats:4222');
  });

  describe('against the stack', () => {
    it('refuses an anonymous client', async () => {
      const { servers } = natsConnectionOptions(stack().natsUrl);
      await expect(connect({ servers, reconnect: false, timeout: 5_000 })).rejects.toMatchObject({
        name: 'AuthorizationError',
        message: expect.stringMatching(/authorization violation/i),
      });
    });

    it('refuses wrong credentials at once, even for a client that reconnects forever', async () => {
      const started = Date.now();
      await expect(connectNats(withPassword(stack().natsUrl, 'not-the-password'), 'intruder')).rejects.toMatchObject({ name: 'AuthorizationError' });
      expect(Date.now() - started).toBeLessThan(5_000);
      const { servers } = natsConnectionOptions(stack().natsUrl);
      await expect(connectNats(parseConfig({ NATS_URL: servers, NATS_USER: 'root', NATS_PASSWORD: 'root' }), 'intruder')).rejects.toMatchObject({
        name: 'AuthorizationError',
      });
    });

    it("lets the stack's credentials in, with JetStream", async () => {
      const nc = await connectNats(stack().natsUrl, 'auth-test');
      try {
        const kvm = new Kvm(nc);
        const bucket = unique('auth');
        const kv = await kvm.create(bucket);
        await kv.put('k', 'v');
        expect((await kv.get('k'))?.string()).toBe('v');
        await kv.destroy();
      } finally {
        await nc.close();
      }
    });

    it('lets the same credentials in as NATS_USER and NATS_PASSWORD', async () => {
      const { servers, user, pass } = natsConnectionOptions(stack().natsUrl);
      const nc = await connectNats(parseConfig({ NATS_URL: servers, NATS_USER: user, NATS_PASSWORD: pass }), 'auth-test');
      await nc.close();
    });
  });
});
