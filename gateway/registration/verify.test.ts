import { randomBytes } from 'node:crypto';
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts';
import { describe, expect, it } from 'vitest';
import { maxRegistrationLifetimeSeconds, registrationTypedData, type RegistrationBody, type RegistrationFields } from '../../domain/registration.ts';
import { toApiError } from '../errors.ts';
import { MemoryNonceStore } from './signed.ts';
import { RegistrationError, verifyRegistration, type RegistrationErrorCode } from './verify.ts';

const chainId = 31337;
const now = 1_800_000_000;
const operator = privateKeyToAccount(generatePrivateKey());
const stranger = privateKeyToAccount(generatePrivateKey());

const sha = (seed: string) => `0x${seed.repeat(64).slice(0, 64)}`;

function fields(overrides: Partial<RegistrationFields> = {}): RegistrationFields {
  return {
    nodeId: 'node-0a1b2c3d4e',
    operator: operator.address,
    models: ['gitblock-tiny', 'qwen2.5-0.5b'],
    modelHashes: [sha('a'), sha('b')],
    gpu: 'NVIDIA H100 80GB HBM3',
    version: '0.1.0',
    expiry: now + 300,
    nonce: `0x${randomBytes(32).toString('hex')}`,
    ...overrides,
  };
}

/** Signs like the node does, but straight from the domain helpers, so this test needs no node code. */
async function sign(registration: RegistrationFields, signer: PrivateKeyAccount = operator, signChainId = chainId): Promise<RegistrationBody> {
  return { registration, signature: await signer.signTypedData(registrationTypedData(signChainId, registration)) };
}

/** The address with one letter's case flipped: an EIP-55 checksum error. */
function miscased(address: string): string {
  const i = address.slice(2).search(/[a-fA-F]/) + 2;
  const c = address[i]!;
  return address.slice(0, i) + (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()) + address.slice(i + 1);
}

function deps(nonces = new MemoryNonceStore(() => now)) {
  return { chainId, now: () => now, nonces };
}

async function refusal(promise: Promise<unknown>): Promise<RegistrationError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RegistrationError);
  return err as RegistrationError;
}

async function expectCode(promise: Promise<unknown>, code: RegistrationErrorCode, httpStatus: number): Promise<RegistrationError> {
  const err = await refusal(promise);
  expect(err.code).toBe(code);
  expect(toApiError(err).status).toBe(httpStatus);
  return err;
}

describe('verifyRegistration', () => {
  it('accepts a registration signed by its operator and returns the checksummed signer', async () => {
    const body = await sign(fields());
    // Through JSON, as it arrives over HTTP.
    const verified = await verifyRegistration(JSON.parse(JSON.stringify(body)), deps());
    expect(verified).toEqual({
      nodeId: 'node-0a1b2c3d4e',
      operator: operator.address,
      models: ['gitblock-tiny', 'qwen2.5-0.5b'],
      modelHashes: [sha('a'), sha('b')],
      gpu: 'NVIDIA H100 80GB HBM3',
      version: '0.1.0',
      expiry: now + 300,
      nonce: body.registration.nonce,
    });
  });

  it('accepts the operator address in lowercase and reports it checksummed', async () => {
    const body = await sign(fields({ operator: operator.address.toLowerCase() }));
    expect((await verifyRegistration(body, deps())).operator).toBe(operator.address);
  });

  it.each([
    ['models', { models: ['gitblock-tiny', 'qwen2.5-7b'] }],
    ['model hashes', { modelHashes: [sha('a'), sha('c')] }],
    ['operator', { operator: stranger.address }],
    ['expiry', { expiry: now + 301 }],
    ['node id', { nodeId: 'node-ffffffffff' }],
    ['gpu', { gpu: 'NVIDIA B200' }],
  ] as const)('refuses a body whose %s was changed after signing', async (_what, change) => {
    const body = await sign(fields());
    const tampered = { ...body, registration: { ...body.registration, ...change } };
    const err = await expectCode(verifyRegistration(tampered, deps()), 'REGISTRATION_BAD_SIGNATURE', 401);
    expect(toApiError(err).body()).toEqual({ error: { message: err.message, type: 'authentication_error', param: null, code: 'registration_rejected' } });
  });

  it('refuses a registration signed by another key that claims the operator', async () => {
    const forged = await sign(fields({ operator: operator.address }), stranger);
    const err = await expectCode(verifyRegistration(forged, deps()), 'REGISTRATION_BAD_SIGNATURE', 401);
    expect(err.message).toContain(operator.address);
  });

  it('refuses a registration signed for another chain', async () => {
    await expectCode(verifyRegistration(await sign(fields(), operator, 1), deps()), 'REGISTRATION_BAD_SIGNATURE', 401);
  });

  it('refuses a well-formed signature that is no valid secp256k1 signature', async () => {
    const body = await sign(fields());
    await expectCode(verifyRegistration({ ...body, signature: `0x${'00'.repeat(64)}1b` }, deps()), 'REGISTRATION_BAD_SIGNATURE', 401);
  });

  it('refuses an expired registration, and one expiring right now', async () => {
    await expectCode(verifyRegistration(await sign(fields({ expiry: now - 1 })), deps()), 'REGISTRATION_EXPIRED', 401);
    await expectCode(verifyRegistration(await sign(fields({ expiry: now })), deps()), 'REGISTRATION_EXPIRED', 401);
  });

  it('refuses an expiry beyond the maximum lifetime, and accepts one exactly at it', async () => {
    const err = await expectCode(
      verifyRegistration(await sign(fields({ expiry: now + maxRegistrationLifetimeSeconds + 1 })), deps()),
      'REGISTRATION_TOO_LONG_LIVED',
      400,
    );
    expect(err.message).toContain('clock');
    await expect(verifyRegistration(await sign(fields({ expiry: now + maxRegistrationLifetimeSeconds })), deps())).resolves.toMatchObject({ nodeId: 'node-0a1b2c3d4e' });
  });

  it('refuses the second use of the same body', async () => {
    const d = deps();
    const body = await sign(fields());
    await verifyRegistration(body, d);
    const err = await expectCode(verifyRegistration(body, d), 'REGISTRATION_REPLAYED', 409);
    expect(err.message).toContain(body.registration.nonce);
    expect(toApiError(err).body().error).toMatchObject({ type: 'invalid_request_error', code: 'conflict' });
  });

  it('consumes no nonce for a refused signature, so a forger cannot burn the operator’s registration', async () => {
    const d = deps();
    const body = await sign(fields());
    await expectCode(verifyRegistration({ ...body, registration: { ...body.registration, gpu: 'x' } }, d), 'REGISTRATION_BAD_SIGNATURE', 401);
    expect(d.nonces.size).toBe(0);
    await expect(verifyRegistration(body, d)).resolves.toMatchObject({ operator: operator.address });
  });

  it('keeps nonces per operator', async () => {
    const d = deps();
    const nonce = `0x${'ab'.repeat(32)}`;
    await verifyRegistration(await sign(fields({ nonce })), d);
    await expect(verifyRegistration(await sign(fields({ nonce, operator: stranger.address }), stranger), d)).resolves.toMatchObject({ operator: stranger.address });
  });

  it('refuses a garbage body, listing the bad fields', async () => {
    const err = await expectCode(
      verifyRegistration(
        {
          registration: { nodeId: 'X', operator: '0x12', models: ['Bad Model'], modelHashes: ['zz'], gpu: 'g'.repeat(129), version: '1', expiry: -5, nonce: '0x1', extra: true },
          signature: 'nope',
        },
        deps(),
      ),
      'REGISTRATION_INVALID',
      400,
    );
    for (const field of ['registration.nodeId', 'registration.operator', 'registration.models.0', 'registration.modelHashes.0', 'registration.gpu', 'registration.expiry', 'registration.nonce', 'signature']) {
      expect(err.message).toContain(field);
    }
    expect(err.message).toContain('extra');
  });

  it.each([null, undefined, 'registration', 42, [], {}])('refuses a non-body %j as invalid', async (body) => {
    await expectCode(verifyRegistration(body, deps()), 'REGISTRATION_INVALID', 400);
  });

  it.each<[string, Partial<RegistrationFields>, string]>([
    ['a hash count that differs from the model count', { modelHashes: [sha('a')] }, 'registration.modelHashes'],
    ['the same model twice', { models: ['gitblock-tiny', 'gitblock-tiny'] }, 'registration.models.1'],
    ['a mixed-case operator with a wrong checksum', { operator: miscased(operator.address) }, 'registration.operator'],
  ])('refuses %s, signed by its operator', async (_what, change, field) => {
    const err = await expectCode(verifyRegistration(await sign(fields(change)), deps()), 'REGISTRATION_INVALID', 400);
    expect(err.message).toContain(field);
  });

  it('refuses a body nobody signed as such, whatever else is wrong with it: a client without the key learns only that', async () => {
    const body = await sign(fields());
    for (const change of [{ modelHashes: [sha('a')] }, { models: ['gitblock-tiny', 'gitblock-tiny'] }, { expiry: now + maxRegistrationLifetimeSeconds + 60 }]) {
      await expectCode(verifyRegistration({ ...body, registration: { ...body.registration, ...change } }, deps()), 'REGISTRATION_BAD_SIGNATURE', 401);
    }
  });

  it.each([
    ['more than 32 models', { models: Array.from({ length: 33 }, (_, i) => `m${i}`), modelHashes: Array.from({ length: 33 }, () => sha('a')) }, 'registration.models'],
    ['an uppercase nonce (a second spelling of a used one)', { nonce: `0x${'AB'.repeat(32)}` }, 'registration.nonce'],
    ['an uppercase model hash', { modelHashes: [sha('A'), sha('b')] }, 'registration.modelHashes.0'],
    ['a model hash without 0x', { modelHashes: [sha('a').slice(2), sha('b')] }, 'registration.modelHashes.0'],
    ['a version over 32 characters', { version: 'v'.repeat(33) }, 'registration.version'],
  ] as const)('refuses %s', async (_what, change, field) => {
    const body = await sign(fields());
    const err = await expectCode(verifyRegistration({ ...body, registration: { ...body.registration, ...change } }, deps()), 'REGISTRATION_INVALID', 400);
    expect(err.message).toContain(field);
  });
});

describe('MemoryNonceStore', () => {
  it('forgets a nonce once its registration has expired', async () => {
    let t = now;
    const store = new MemoryNonceStore(() => t);
    expect(await store.consume('0xA', '0x1', now + 10)).toBe(true);
    expect(await store.consume('0xa', '0x1', now + 10)).toBe(false);
    t = now + 10;
    expect(await store.consume('0xb', '0x2', now + 20)).toBe(true);
    expect(store.size).toBe(1);
  });
});
