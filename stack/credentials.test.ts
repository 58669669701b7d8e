import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { natsCredentials, natsCredentialsFile, writeNatsServerConfig } from './credentials.ts';

const mode = (file: string) => statSync(file).mode & 0o777;

describe("the stack's NATS credentials", () => {
  let dataDir: string;
  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'gitblock-creds-test-'));
  });
  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

  it('are made once per data dir, readable by this user only, and reused', () => {
    const first = natsCredentials(dataDir);
    expect(first.user).toBe('gitblock');
    expect(first.password).toMatch(/^[\w-]{32}$/);
    expect(mode(natsCredentialsFile(dataDir))).toBe(0o600);
    expect(natsCredentials(dataDir)).toEqual(first);

    const other = mkdtempSync(join(tmpdir(), 'gitblock-creds-test-'));
    try {
      expect(natsCredentials(other).password).not.toBe(first.password);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('narrow a widened file back to 0600', () => {
    const first = natsCredentials(dataDir);
    chmodSync(natsCredentialsFile(dataDir), 0o644);
    expect(natsCredentials(dataDir)).toEqual(first);
    expect(mode(natsCredentialsFile(dataDir))).toBe(0o600);
  });

  it('refuse a damaged file, saying how to start over', () => {
    natsCredentials(dataDir);
    writeFileSync(natsCredentialsFile(dataDir), '{"user":"gitblock","password":"a\\" }"}');
    expect(() => natsCredentials(dataDir)).toThrow(/must hold \{"user","password"\} .* delete it to make new NATS credentials/);
    writeFileSync(natsCredentialsFile(dataDir), 'not json');
    expect(() => natsCredentials(dataDir)).toThrow(/is not readable JSON/);
  });

  it("go into nats-server's config as an authorization block, mode 0600", () => {
    const credentials = natsCredentials(dataDir);
    const file = writeNatsServerConfig(dataDir, credentials);
    expect(mode(file)).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toContain(`authorization {\n  user: "gitblock"\n  password: "${credentials.password}"\n}`);
  });
});
