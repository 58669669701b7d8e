import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from './env.ts';

describe('config', () => {
  it('gives working defaults for a local network', () => {
    const config = parseConfig({});
    expect(config.TEMPORAL_ADDRESS).toBe('127.0.0.1:7233');
    expect(config.GATEWAY_PORT).toBe(8080);
    expect(config.MONGODB_URI).toBeUndefined();
  });

  it('treats empty strings as unset', () => {
    expect(parseConfig({ MONGODB_URI: '', GATEWAY_PORT: '' }).GATEWAY_PORT).toBe(8080);
  });

  it('lists every bad variable with what it must be', () => {
    let error: unknown;
    try {
      parseConfig({ GATEWAY_PORT: '99999', NATS_URL: 'http://x', TEMPORAL_ADDRESS: 'nope' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toMatch(/GATEWAY_PORT: .*65535/);
    expect(message).toMatch(/NATS_URL: must be a URL starting with nats:\/\/ or tls:\/\//);
    expect(message).toMatch(/TEMPORAL_ADDRESS: must be host:port/);
  });
});
