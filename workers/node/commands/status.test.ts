/**
 * `gitblock-node status` and `GET /v1/nodes?operator=` on the real stack: a real node process
 * joined through the edge, more nodes registered through the gateway, two operators. Status
 * asks the gateway only (a node has no NATS credentials), and every command finds the gateway
 * by the same default.
 */
import { randomBytes } from 'node:crypto';
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNetwork, type Network } from '../../../test/e2e/harness.ts';
import { unique } from '../../../test/helpers.ts';
import { runNodeCliToEnd as cli } from '../../../test/node-process.ts';
import { writeKeyFile } from '../../../test/settlement-helpers.ts';
import { signRegistration } from '../identity.ts';

let net: Network;
let chainId: number;
const keyA = generatePrivateKey();
const keyB = generatePrivateKey();
const a = privateKeyToAccount(keyA);
const b = privateKeyToAccount(keyB);
const keyFileA = writeKeyFile(keyA, 'operator.key');
let live: string;
let idle: string;
let theirs: string;

async function register(account: PrivateKeyAccount): Promise<string> {
  const nodeId = unique('st');
  const body = await signRegistration(account, { nodeId, models: ['gitblock-tiny'], modelHashes: [randomBytes(32).toString('hex')], gpu: 'cpu', version: '0.1.0' }, chainId);
  const response = await net.app.inject({ method: 'POST', url: '/v1/nodes/register', payload: body });
  expect(response.statusCode, response.body).toBe(201);
  return nodeId;
}

/** Until the node actors have projected every one of `ids` into the gateway's view. */
async function listed(ids: string[]): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const shown = (await net.app.inject('/v1/nodes')).json<{ data: { id: string }[] }>().data.map((n) => n.id);
    if (ids.every((id) => shown.includes(id))) return;
    if (Date.now() > deadline) throw new Error(`not all of ${ids.join(', ')} listed in 20 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  net = await startNetwork({ requestsPerMinute: 1000, tokensPerDay: 1_000_000 });
  chainId = (await net.app.inject('/v1/network')).json<{ chainId: number }>().chainId;
  live = (await net.startNode('st-live', ['--key-file', keyFileA])).nodeId;
  idle = await register(a);
  theirs = await register(b);
  await listed([live, idle, theirs]);
}, 120_000);

afterAll(async () => {
  await net?.stop();
});

describe('GET /v1/nodes?operator=', () => {
  it("lists one operator's nodes, whatever the address's case", async () => {
    const ids = (q: string) => net.app.inject(`/v1/nodes?operator=${q}`).then((r) => r.json<{ data: { id: string; operator: string }[] }>().data);
    expect((await ids(a.address.toLowerCase())).map((n) => n.id).sort()).toEqual([live, idle].sort());
    expect((await ids(b.address)).map((n) => [n.id, n.operator])).toEqual([[theirs, b.address]]);
    expect(await ids(privateKeyToAccount(generatePrivateKey()).address)).toEqual([]);
  });

  it('refuses what is not one address, in the API’s error shape', async () => {
    for (const q of ['operator=nope', `operator=${a.address}00`, `operator=${a.address}&operator=${b.address}`]) {
      const response = await net.app.inject(`/v1/nodes?${q}`);
      expect(response.statusCode, q).toBe(400);
      expect(response.json(), q).toMatchObject({ error: { code: 'invalid_body', param: 'operator', message: expect.stringMatching(/operator must be an address/) } });
    }
  });
});

describe('gitblock-node status', () => {
  it("lists this operator's nodes with their state and liveness, from the gateway", async () => {
    const { code, stdout, stderr } = await cli(['status', '--gateway', net.url, '--key-file', keyFileA]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain(`operator  ${a.address}`);
    expect(stdout).toMatch(/2 nodes, 1 live:/);
    expect(stdout).toMatch(new RegExp(`^${live}\\s+probation\\s+yes\\s`, 'm'));
    expect(stdout).toMatch(new RegExp(`^${idle}\\s+probation\\s+no\\s`, 'm'));
    expect(stdout).not.toContain(theirs);
  });

  it("shows another operator's node with its registered operator, not this machine's key", async () => {
    const { code, stdout } = await cli(['status', '--gateway', net.url, '--key-file', keyFileA, '--node-id', theirs]);
    expect(code).toBe(0);
    expect(stdout).toContain(`operator    ${b.address}  (not this machine's key, ${a.address})`);
    expect(stdout).toMatch(/^live {8}no heartbeat on the network$/m);
    const mine = await cli(['status', '--gateway', net.url, '--key-file', keyFileA, '--node-id', live, '--json']);
    expect(JSON.parse(mine.stdout)).toMatchObject({ id: live, operator: a.address, state: 'probation', live: true });
  }, 120_000);

  it('says so, and exits non-zero, for a node the network does not know', async () => {
    const { code, stderr } = await cli(['status', '--gateway', net.url, '--node-id', 'no-such-node']);
    expect(code).toBe(1);
    expect(stderr).toBe(`gitblock-node: node no-such-node is not registered with the network at ${net.url}\n`);
  });

  it('finds the gateway without --gateway: GITBLOCK_GATEWAY_URL, else this machine on GATEWAY_PORT', async () => {
    const port = new URL(net.url).port;
    const byPort = await cli(['status', '--key-file', keyFileA], { GATEWAY_PORT: port, GITBLOCK_GATEWAY_URL: '' });
    expect(byPort.stderr).toBe('');
    expect(byPort.stdout).toContain(`gateway   http://127.0.0.1:${port}`);
    const rewards = await cli(['rewards', '--key-file', keyFileA, '--json'], { GATEWAY_PORT: port, GITBLOCK_GATEWAY_URL: '' });
    expect(rewards.stderr).toBe('');
    expect(JSON.parse(rewards.stdout)).toMatchObject({ operator: a.address });
    const retire = await cli(['retire', 'no-such-node', '--key-file', keyFileA], { GITBLOCK_GATEWAY_URL: net.url, GATEWAY_PORT: '9' });
    expect(retire.stderr).toMatch(new RegExp(`^gitblock-node: the gateway at ${net.url} answered 404`));
  }, 180_000);
});
