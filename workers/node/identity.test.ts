import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryNonceStore } from '../../gateway/registration/signed.ts';
import { verifyRegistration } from '../../gateway/registration/verify.ts';
import {
  loadOrCreateNodeId,
  loadOrCreateOperatorKey,
  NodeIdError,
  OperatorKeyError,
  RegistrationInputError,
  signRegistration,
  type RegistrationInput,
} from './identity.ts';

const posix = process.platform !== 'win32';
const chainId = 31337;

let dir: string;
const scratch = () => (dir = mkdtempSync(join(tmpdir(), 'gitblock-identity-')));
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function refusal<E extends Error>(promise: Promise<unknown> | (() => unknown), type: new (...args: never[]) => E): Promise<E> {
  let err: unknown;
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(type);
  return err as E;
}

describe('loadOrCreateOperatorKey', () => {
  it.runIf(posix)('creates a 0600 key in a new 0700 directory, then reuses it', async () => {
    const path = join(scratch(), 'keys', 'operator.key');
    const first = await loadOrCreateOperatorKey(path);
    expect(first.created).toBe(true);
    expect(first.path).toBe(path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'keys')).mode & 0o777).toBe(0o700);
    expect(readFileSync(path, 'utf8')).toMatch(/^0x[0-9a-f]{64}\n$/);
    expect(readdirSync(join(dir, 'keys'))).toEqual(['operator.key']); // no temp file left behind

    const second = await loadOrCreateOperatorKey(path);
    expect(second.created).toBe(false);
    expect(second.account.address).toBe(first.account.address);
  });

  it('gives concurrent first starts one and the same key', async () => {
    const path = join(scratch(), 'operator.key');
    const results = await Promise.all(Array.from({ length: 6 }, () => loadOrCreateOperatorKey(path)));
    expect(new Set(results.map((r) => r.account.address)).size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(readdirSync(dir)).toEqual(['operator.key']);
  });

  it.runIf(posix)('refuses a key file readable by group, naming the path and the chmod fix', async () => {
    const path = join(scratch(), 'operator.key');
    await loadOrCreateOperatorKey(path);
    chmodSync(path, 0o640);
    const err = await refusal(loadOrCreateOperatorKey(path), OperatorKeyError);
    expect(err.code).toBe('OPERATOR_KEY_INSECURE');
    expect(err.message).toContain(`chmod 600 ${path}`);
    expect(err.message).toContain('0640');
  });

  it.runIf(posix)('refuses a key file writable by others', async () => {
    const path = join(scratch(), 'operator.key');
    await loadOrCreateOperatorKey(path);
    chmodSync(path, 0o602);
    expect((await refusal(loadOrCreateOperatorKey(path), OperatorKeyError)).code).toBe('OPERATOR_KEY_INSECURE');
  });

  it.each([
    ['text that is no key', 'hello world\n', 'not 0x followed by 64 hex digits'],
    ['an empty file', '', 'empty'],
    ['a key without 0x', `${'ab'.repeat(32)}\n`, 'not 0x followed by 64 hex digits'],
    ['a zero key', `0x${'00'.repeat(32)}\n`, 'not a valid secp256k1 private key'],
    ['a key beyond the curve order', `0x${'ff'.repeat(32)}\n`, 'not a valid secp256k1 private key'],
  ])('refuses %s with a clear message', async (_what, content, why) => {
    const path = join(scratch(), 'operator.key');
    writeFileSync(path, content, { mode: 0o600 });
    const err = await refusal(loadOrCreateOperatorKey(path), OperatorKeyError);
    expect(err.code).toBe('OPERATOR_KEY_INVALID');
    expect(err.message).toContain(path);
    expect(err.message).toContain(why);
    // The bad file is left as it was: it may be the operator's only copy of something.
    expect(readFileSync(path, 'utf8')).toBe(content);
  });

  it('accepts a hand-written key with surrounding whitespace', async () => {
    const path = join(scratch(), 'operator.key');
    const key = `0x${'11'.repeat(32)}`;
    writeFileSync(path, `  ${key}\r\n`, { mode: 0o600 });
    const { account, created } = await loadOrCreateOperatorKey(path);
    expect(created).toBe(false);
    expect(account.address).toMatch(/^0x[0-9a-fA-F]{40}$/);
  });
});

describe('loadOrCreateNodeId', () => {
  it('creates a node id, stores it and reuses it', () => {
    scratch();
    const stateDir = join(dir, 'state');
    const id = loadOrCreateNodeId(stateDir);
    expect(id).toMatch(/^node-[0-9a-f]{10}$/);
    expect(readFileSync(join(stateDir, 'node-id'), 'utf8').trim()).toBe(id);
    expect(loadOrCreateNodeId(stateDir)).toBe(id);
  });

  it('returns a valid given id as is', () => {
    expect(loadOrCreateNodeId(scratch(), 'gpu-box-7')).toBe('gpu-box-7');
  });

  it.each(['Bad_Id', 'ab', '-leading-dash', 'x'.repeat(64), ''])('refuses the given id %j', (given) => {
    const err = (() => {
      try {
        loadOrCreateNodeId(scratch(), given);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(NodeIdError);
    expect((err as NodeIdError).code).toBe('NODE_ID_INVALID');
    expect((err as Error).message).toContain('lowercase letters, digits and dashes');
  });

  it('refuses a corrupt stored id, naming the file', () => {
    writeFileSync(join(scratch(), 'node-id'), 'NOT VALID\n');
    expect(() => loadOrCreateNodeId(dir)).toThrow(/node-id holds an invalid node id/);
  });
});

const input: RegistrationInput = {
  nodeId: 'node-0a1b2c3d4e',
  models: ['gitblock-tiny'],
  modelHashes: ['0xe3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
  gpu: 'cpu',
  version: '0.1.0',
};

describe('signRegistration', () => {
  it('signs a body the gateway verifies, for the key’s address, expiring in 5 minutes', async () => {
    const { account } = await loadOrCreateOperatorKey(join(scratch(), 'operator.key'));
    const now = 1_800_000_000;
    const body = await signRegistration(account, input, chainId, { now: () => now });
    expect(body.registration.operator).toBe(account.address);
    expect(body.registration.expiry).toBe(now + 300);
    expect(body.registration.nonce).toMatch(/^0x[0-9a-f]{64}$/);
    expect(body.signature).toMatch(/^0x[0-9a-f]{130}$/);
    const verified = await verifyRegistration(JSON.parse(JSON.stringify(body)), { chainId, now: () => now, nonces: new MemoryNonceStore(() => now) });
    expect(verified.operator).toBe(account.address);
    expect(verified.modelHashes).toEqual(input.modelHashes);
    // A fresh nonce each time.
    expect((await signRegistration(account, input, chainId)).registration.nonce).not.toBe(body.registration.nonce);
  });

  it('sends bare or uppercase model hashes as 0x + lowercase', async () => {
    const { account } = await loadOrCreateOperatorKey(join(scratch(), 'operator.key'));
    const bare = input.modelHashes[0]!.slice(2);
    const body = await signRegistration(account, { ...input, modelHashes: [bare.toUpperCase()] }, chainId);
    expect(body.registration.modelHashes).toEqual(input.modelHashes);
  });

  it('refuses fields the gateway would refuse, naming them', async () => {
    const { account } = await loadOrCreateOperatorKey(join(scratch(), 'operator.key'));
    const err = await refusal(signRegistration(account, { ...input, gpu: 'g'.repeat(200) }, chainId), RegistrationInputError);
    expect(err.message).toContain('gpu');
  });
});

