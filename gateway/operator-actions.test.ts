/**
 * Operator actions through the gateway, on the real stack: the control worker runs the node
 * actors, the gateway's clock is the test's to move (the cool-down is the real one). Each body
 * is what a hostile peer could send: forged, another operator's, replayed, expired, moved to
 * another node or action. The test's own Temporal client stands in for the network's spot
 * checks (tests are trusted); no GPU node is needed.
 */
import { randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import type { PrivateKeyAccount } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createRequestActivities } from '../activities/requests.ts';
import { operatorActionTypedData, REINSTATE_COOL_DOWN_MS, type OperatorAction, type OperatorActionFields } from '../domain/operator-action.ts';
import { maxRegistrationLifetimeSeconds } from '../domain/registration.ts';
import { SUSPEND_AFTER_CONSECUTIVE_VERIFICATION_FAILURES } from '../domain/reputation.ts';
import { workflowIds } from '../temporal.config.ts';
import { startNetwork, type Network } from '../test/e2e/harness.ts';
import { unique } from '../test/helpers.ts';
import { runNodeCliToEnd as cli } from '../test/node-process.ts';
import { writeKeyFile } from '../test/settlement-helpers.ts';
import { signOperatorAction } from '../workers/node/commands/operator-action.ts';
import { signRegistration } from '../workers/node/identity.ts';
import { stateQuery, verificationVerdictSignal, type nodeActorWorkflow } from '../workflows/node-actor.ts';

let net: Network;
let chainId: number;
/** How far the gateway's clock runs ahead of the real one, ms. */
let ahead = 0;
const gatewayNow = () => Date.now() + ahead;
const gatewaySeconds = () => Math.floor(gatewayNow() / 1000);

const operatorKey = generatePrivateKey();
const operator = privateKeyToAccount(operatorKey);
const stranger = privateKeyToAccount(generatePrivateKey());

beforeAll(async () => {
  net = await startNetwork({ requestsPerMinute: 1000, tokensPerDay: 1_000_000 }, { gateway: { now: gatewayNow } });
  chainId = (await net.app.inject('/v1/network')).json<{ chainId: number }>().chainId;
});

afterAll(async () => {
  await net?.stop();
});

afterEach(() => {
  ahead = 0;
});

/** Registers a new node of `account` through the gateway, which starts its actor. */
async function register(account: PrivateKeyAccount = operator): Promise<string> {
  const nodeId = unique('op');
  const body = await signRegistration(account, { nodeId, models: ['gitblock-tiny'], modelHashes: [randomBytes(32).toString('hex')], gpu: 'cpu', version: '0.1.0' }, chainId, { now: gatewaySeconds });
  const response = await net.app.inject({ method: 'POST', url: '/v1/nodes/register', payload: body });
  expect(response.statusCode, response.body).toBe(201);
  return nodeId;
}

const actor = (nodeId: string) => net.temporal.workflow.getHandle<typeof nodeActorWorkflow>(workflowIds.node(nodeId));
const stateOf = async (nodeId: string) => (await actor(nodeId).query(stateQuery)).state;

/** Failed spot checks in a row, as the network's spot-check workflow signals them. */
async function suspend(nodeId: string): Promise<void> {
  for (let i = 0; i < SUSPEND_AFTER_CONSECUTIVE_VERIFICATION_FAILURES; i++) {
    await actor(nodeId).signal(verificationVerdictSignal, { requestId: unique('req'), passed: false, at: Date.now() });
  }
  expect(await stateOf(nodeId)).toBe('suspended');
}

function sign(nodeId: string, action: OperatorAction, options: { by?: PrivateKeyAccount; fields?: Partial<OperatorActionFields>; chain?: number } = {}) {
  const fields: OperatorActionFields = { nodeId, action, expiry: gatewaySeconds() + 300, nonce: `0x${randomBytes(32).toString('hex')}`, ...options.fields };
  return (options.by ?? operator).signTypedData(operatorActionTypedData(options.chain ?? chainId, fields)).then((signature) => ({ action: fields, signature }));
}

const post = (nodeId: string, action: OperatorAction, payload: unknown) => net.app.inject({ method: 'POST', url: `/v1/nodes/${nodeId}/${action}`, payload: payload as object });

function expectError(response: LightMyRequestResponse, status: number, code: string, message?: RegExp): void {
  expect(response.statusCode, response.body).toBe(status);
  const { error } = response.json<{ error: { code: string; message: string; type: string } }>();
  expect(error.code).toBe(code);
  if (message) expect(error.message).toMatch(message);
}

describe('operator actions are refused', () => {
  let nodeId: string;
  beforeAll(async () => {
    nodeId = await register();
    await suspend(nodeId);
  });
  beforeEach(() => {
    // Past the cool-down: what is refused here is refused for the body, not for the time.
    ahead = REINSTATE_COOL_DOWN_MS + 1_000;
  });

  it('with a forged signature: one that recovers to no one is 401, one that recovers to someone else 403', async () => {
    const body = await sign(nodeId, 'reinstate');
    expectError(await post(nodeId, 'reinstate', { ...body, signature: `0x${'00'.repeat(64)}1b` }), 401, 'signature_rejected', /malformed/);
    // The operator's own signature, of another message: it recovers to some other key.
    const borrowed = (await sign(nodeId, 'reinstate')).signature;
    expectError(await post(nodeId, 'reinstate', { ...body, signature: borrowed }), 403, 'forbidden', new RegExp(`Only node ${nodeId}'s operator ${operator.address}`));
    // Fields changed after signing: another message, so another (meaningless) signer.
    expectError(await post(nodeId, 'reinstate', { ...body, action: { ...body.action, expiry: body.action.expiry + 1 } }), 403, 'forbidden');
    expectError(await post(nodeId, 'reinstate', await sign(nodeId, 'reinstate', { chain: chainId + 1 })), 403, 'forbidden');
    expect(await stateOf(nodeId)).toBe('suspended');
  });

  it("signed with another operator's key, even one with a node of its own", async () => {
    await register(stranger);
    for (const action of ['reinstate', 'retire'] as const) {
      const response = await post(nodeId, action, await sign(nodeId, action, { by: stranger }));
      expectError(response, 403, 'forbidden');
      // The recovered key is not echoed: for a forged body it would be meaningless.
      expect(response.body).not.toContain(stranger.address);
    }
    expect(await stateOf(nodeId)).toBe('suspended');
  });

  it('expired, expiring now, or living longer than a registration may', async () => {
    expectError(await post(nodeId, 'reinstate', await sign(nodeId, 'reinstate', { fields: { expiry: gatewaySeconds() - 1 } })), 401, 'signature_rejected', /expired/);
    expectError(await post(nodeId, 'reinstate', await sign(nodeId, 'reinstate', { fields: { expiry: gatewaySeconds() } })), 401, 'signature_rejected', /expired/);
    expectError(await post(nodeId, 'reinstate', await sign(nodeId, 'reinstate', { fields: { expiry: gatewaySeconds() + maxRegistrationLifetimeSeconds + 5 } })), 400, 'invalid_body', /clock/);
    expect(await stateOf(nodeId)).toBe('suspended');
  });

  it('moved to another node or to the other action', async () => {
    const other = await register();
    expectError(await post(other, 'reinstate', await sign(nodeId, 'reinstate')), 400, 'invalid_body', new RegExp(`signed for node ${nodeId}`));
    expectError(await post(nodeId, 'reinstate', await sign(nodeId, 'retire')), 400, 'invalid_body', /signed to retire the node, but was posted to \/reinstate/);
    expect(await stateOf(nodeId)).toBe('suspended');
    expect(await stateOf(other)).toBe('probation');
  });

  it('malformed, or for a node that never registered', async () => {
    const body = await sign(nodeId, 'reinstate');
    // An unknown field is named the way every route names one (gateway/errors.ts).
    expectError(await post(nodeId, 'reinstate', { ...body, extra: 1 }), 400, 'unsupported_parameter', /extra/);
    expectError(await post(nodeId, 'reinstate', { action: { ...body.action, action: 'promote' }, signature: body.signature }), 400, 'invalid_body', /action\.action/);
    expectError(await post(nodeId, 'reinstate', { ...body, action: { ...body.action, nonce: body.action.nonce.toUpperCase().replace('0X', '0x') } }), 400, 'invalid_body', /action\.nonce/);
    expectError(await post('Not_A_Node', 'reinstate', body), 400, 'invalid_body');
    const unknown = unique('ghost');
    expectError(await post(unknown, 'reinstate', await sign(unknown, 'reinstate')), 404, 'not_found');
  });

  it('replayed, even when its first use was refused', async () => {
    const active = await register();
    const body = await sign(active, 'reinstate');
    expectError(await post(active, 'reinstate', body), 409, 'conflict', /it is probation, not suspended: there is nothing to reinstate/);
    expectError(await post(active, 'reinstate', body), 401, 'signature_rejected', /already used/);
  });
});

describe('reinstating a suspended node', () => {
  it('waits out the cool-down and every pending spot check, then puts the node on probation', async () => {
    const nodeId = await register();
    await suspend(nodeId);

    const early = await post(nodeId, 'reinstate', await sign(nodeId, 'reinstate'));
    expectError(early, 409, 'conflict', /may be reinstated only 10 minutes later: retry after \d{4}-\d\d-\d\dT/);
    expect(Number(early.headers['retry-after'])).toBeGreaterThan(REINSTATE_COOL_DOWN_MS / 1000 - 30);
    expect(Number(early.headers['retry-after'])).toBeLessThanOrEqual(REINSTATE_COOL_DOWN_MS / 1000);

    ahead = REINSTATE_COOL_DOWN_MS - 5_000;
    expectError(await post(nodeId, 'reinstate', await sign(nodeId, 'reinstate')), 409, 'conflict', /retry after/);

    // One answer's spot check still running (no worker will ever pick it up here), as the
    // request workflow records it; and an older record whose check is long gone.
    ahead = REINSTATE_COOL_DOWN_MS + 1_000;
    const requests = createRequestActivities({ db: net.mongo.db });
    const [running, gone] = [unique('req'), unique('req')];
    for (const requestId of [gone, running]) await requests.recordRequest({ requestId, status: 'completed', fields: { nodeId, verification: { status: 'pending' } } });
    const check = await net.temporal.workflow.start('spotCheckWorkflow', { taskQueue: unique('no-worker'), workflowId: workflowIds.spotCheck(running), args: [{}] });
    try {
      const pending = await post(nodeId, 'reinstate', await sign(nodeId, 'reinstate'));
      expectError(pending, 409, 'conflict', new RegExp(`spot check of its answer to request ${running} is still pending`));
      expect(await stateOf(nodeId)).toBe('suspended');
    } finally {
      await check.terminate('the test is done with it');
    }

    const body = await sign(nodeId, 'reinstate');
    const done = await post(nodeId, 'reinstate', body);
    expect(done.statusCode, done.body).toBe(200);
    expect(done.json()).toEqual({ nodeId, action: 'reinstate', state: 'probation' });
    const view = await actor(nodeId).query(stateQuery);
    expect(view.record).toMatchObject({ strikes: 0, consecutiveVerificationFailures: 0, recent: [] });

    // The same body again is a replay, not a second reinstatement.
    expectError(await post(nodeId, 'reinstate', body), 401, 'signature_rejected', /already used/);
    expectError(await post(nodeId, 'reinstate', await sign(nodeId, 'reinstate')), 409, 'conflict', /not suspended/);
  });
});

describe('gitblock-node reinstate and retire', () => {
  it('sign with the operator key file, print the outcome, and exit non-zero on a refusal', async () => {
    const nodeId = await register();
    const keyFile = writeKeyFile(operatorKey, 'operator.key');
    const strangerKey = writeKeyFile(generatePrivateKey(), 'operator.key');

    const refused = await cli(['reinstate', nodeId, '--gateway', net.url, '--key-file', keyFile]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(new RegExp(`^gitblock-node: the gateway at ${net.url} answered 409: Cannot reinstate node ${nodeId}: it is probation, not suspended`));

    const notYours = await cli(['retire', nodeId, '--gateway', net.url, '--key-file', strangerKey]);
    expect(notYours.code).toBe(1);
    expect(notYours.stderr).toMatch(/answered 403: Only node .* may retire it.*\(signed with 0x[0-9a-fA-F]{40}; give the operator's key with --key-file\)/);
    expect(await stateOf(nodeId)).toBe('probation');

    const retired = await cli(['retire', nodeId, '--gateway', net.url, '--key-file', keyFile]);
    expect(retired.stderr).toBe('');
    expect(retired.code).toBe(0);
    expect(retired.stdout.trim()).toBe(`node ${nodeId}: retired, now retired`);

    const again = await cli(['retire', nodeId, '--gateway', net.url, '--key-file', keyFile]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/answered 409: Cannot retire node .*: it is already retired/);
  });

  it('refuse a node id the gateway would refuse, before signing anything', async () => {
    await expect(signOperatorAction(operator, 'Bad Id', 'reinstate', chainId)).rejects.toThrow(/cannot reinstate "Bad Id": nodeId/);
  });
});
