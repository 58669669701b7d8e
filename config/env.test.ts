import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, configSchema, explicitValue, loadConfig, loadLocalConfig, parseConfig } from './env.ts';
import { readLocalNetwork, removeLocalNetwork, writeLocalNetwork, type LocalNetwork } from './local-network.ts';

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

  it('takes NATS credentials as a pair, in one place only', () => {
    expect(parseConfig({ NATS_USER: 'gitblock', NATS_PASSWORD: 'pw' })).toMatchObject({ NATS_USER: 'gitblock', NATS_PASSWORD: 'pw' });
    expect(() => parseConfig({ NATS_USER: 'gitblock' })).toThrow(/NATS_PASSWORD: NATS_USER and NATS_PASSWORD go together/);
    expect(() => parseConfig({ NATS_PASSWORD: 'pw' })).toThrow(/NATS_USER: NATS_USER and NATS_PASSWORD go together/);
    expect(() => parseConfig({ NATS_URL: 'nats://a:b@nats:4222', NATS_USER: 'gitblock', NATS_PASSWORD: 'pw' })).toThrow(/NATS_URL: carries credentials and NATS_USER is set too/);
    expect(parseConfig({ NATS_URL: 'nats://gitblock:pw@nats:4222' }).NATS_URL).toBe('nats://gitblock:pw@nats:4222');
  });

  it('reads seed verifiers as a comma-separated list of addresses, none by default', () => {
    const a = '0x00000000000000000000000000000000000000Aa';
    const b = '0x00000000000000000000000000000000000000bb';
    expect(parseConfig({}).GITBLOCK_SEED_VERIFIERS).toEqual([]);
    expect(parseConfig({ GITBLOCK_SEED_VERIFIERS: ` ${a}, ${b},` }).GITBLOCK_SEED_VERIFIERS).toEqual([a, b]);
    expect(() => parseConfig({ GITBLOCK_SEED_VERIFIERS: `${a},alice` })).toThrow(/GITBLOCK_SEED_VERIFIERS.*must be a 0x address/);
  });

  it('configures no fallback provider by default, and validates one that is given', () => {
    expect(parseConfig({}).GITBLOCK_FALLBACK_URL).toBeUndefined();
    const config = parseConfig({ GITBLOCK_FALLBACK_URL: 'https://api.example.com/v1', GITBLOCK_FALLBACK_API_KEY: 'sk-1', GITBLOCK_FALLBACK_MODELS: 'smollm2-135m=gpt-4o-mini, gitblock-tiny=tiny' });
    expect(config).toMatchObject({ GITBLOCK_FALLBACK_MODELS: { 'smollm2-135m': 'gpt-4o-mini', 'gitblock-tiny': 'tiny' }, GITBLOCK_FALLBACK_MAX_CONCURRENT: 8, GITBLOCK_FALLBACK_TIMEOUT_MS: 60_000 });
    expect(() => parseConfig({ GITBLOCK_FALLBACK_API_KEY: 'sk-1' })).toThrow(/GITBLOCK_FALLBACK_URL: GITBLOCK_FALLBACK_API_KEY is set but not the URL/);
    expect(() => parseConfig({ GITBLOCK_FALLBACK_URL: 'ftp://x' })).toThrow(/GITBLOCK_FALLBACK_URL: must be a URL starting with http/);
    expect(() => parseConfig({ GITBLOCK_FALLBACK_URL: 'http://x', GITBLOCK_FALLBACK_MODELS: 'a=b,c' })).toThrow(/GITBLOCK_FALLBACK_MODELS.*network-id=upstream-name/);
    expect(() => parseConfig({ GITBLOCK_FALLBACK_URL: 'http://x', GITBLOCK_FALLBACK_MAX_CONCURRENT: '0' })).toThrow(/GITBLOCK_FALLBACK_MAX_CONCURRENT/);
  });

  describe('explicitValue', () => {
    it('tells a value set in the environment from a default, even an equal one', () => {
      const config = parseConfig({ TEMPORAL_ADDRESS: '127.0.0.1:7233', NATS_URL: '' });
      expect(explicitValue(config, 'TEMPORAL_ADDRESS')).toBe('127.0.0.1:7233');
      expect(explicitValue(config, 'NATS_URL')).toBeUndefined();
      expect(explicitValue(config, 'GITBLOCK_MODEL_DIR')).toBeUndefined();
      expect(explicitValue(config, 'MONGODB_URI')).toBeUndefined();
      expect(config.NATS_URL).toBe('nats://127.0.0.1:4222');
    });

    it('counts a value put in after parsing, and survives a spread', () => {
      const config = { ...parseConfig({ TEMPORAL_NAMESPACE: 'ops' }), NATS_URL: 'nats://other:4222' };
      expect(explicitValue(config, 'TEMPORAL_NAMESPACE')).toBe('ops');
      expect(explicitValue(config, 'NATS_URL')).toBe('nats://other:4222');
      expect(explicitValue(config, 'TEMPORAL_ADDRESS')).toBeUndefined();
    });

    it('works on loadConfig() and keeps the record out of keys and JSON', () => {
      expect(explicitValue(loadConfig({ TEMPORAL_ADDRESS: 'temporal.example:7233' }), 'TEMPORAL_ADDRESS')).toBe('temporal.example:7233');
      const config = parseConfig({});
      expect(Object.keys(config)).toEqual(Object.keys(configSchema.parse({})));
      expect(JSON.parse(JSON.stringify(config))).toEqual(JSON.parse(JSON.stringify(configSchema.parse({}))));
    });
  });

  describe('loadLocalConfig: a running npm start of this checkout', () => {
    const network = (pid: number): LocalNetwork => ({
      pid,
      gatewayUrl: 'http://127.0.0.1:18080',
      edge: '127.0.0.1:17443',
      temporalAddress: '127.0.0.1:17233',
      temporalNamespace: 'default',
      rpcUrl: 'http://127.0.0.1:18545',
      genesis: 1_800_000_000,
      epochSeconds: 120,
    });
    const withEnv = <T>(env: Record<string, string>, fn: () => T): T => {
      const before = { ...process.env };
      Object.assign(process.env, env);
      try {
        return fn();
      } finally {
        for (const key of Object.keys(env)) if (before[key] === undefined) delete process.env[key];
        Object.assign(process.env, before);
      }
    };

    it('stands in for the defaults while it runs; variables still win', () => {
      const dir = mkdtempSync(join(tmpdir(), 'gitblock-local-'));
      writeLocalNetwork(dir, network(process.pid));
      const config = withEnv({ GITBLOCK_DATA_DIR: dir, CHAIN_RPC_URL: 'http://127.0.0.1:9545', GITBLOCK_GATEWAY_URL: '' }, () => loadLocalConfig());
      expect(config).toMatchObject({ GITBLOCK_GATEWAY_URL: 'http://127.0.0.1:18080', GITBLOCK_EDGE: '127.0.0.1:17443', TEMPORAL_ADDRESS: '127.0.0.1:17233', GITBLOCK_EPOCH_SECONDS: 120, GITBLOCK_GENESIS: 1_800_000_000, CHAIN_RPC_URL: 'http://127.0.0.1:9545' });
      // Only what the launcher wrote: plain loadConfig never reads the file.
      expect(withEnv({ GITBLOCK_DATA_DIR: dir }, () => loadConfig()).TEMPORAL_ADDRESS).toBe('127.0.0.1:7233');
      removeLocalNetwork(dir, process.pid + 1);
      expect(readLocalNetwork(dir)).toBeDefined();
      removeLocalNetwork(dir, process.pid);
      expect(readLocalNetwork(dir)).toBeUndefined();
    });

    it('ignores a file whose launcher is gone, or that is not what the launcher writes', () => {
      const dir = mkdtempSync(join(tmpdir(), 'gitblock-local-'));
      writeLocalNetwork(dir, network(2 ** 22 + 12345));
      expect(withEnv({ GITBLOCK_DATA_DIR: dir }, () => loadLocalConfig()).TEMPORAL_ADDRESS).toBe('127.0.0.1:7233');
      writeLocalNetwork(dir, { ...network(process.pid), gatewayUrl: 'not a url' });
      expect(readLocalNetwork(dir)).toBeUndefined();
    });
  });
});
