/**
 * Rewards end to end: requests served by two GPU node processes of two operators (each its own
 * `--key-file`) accrue in the ledger; settlement posts the epoch's root; each operator sees its
 * rewards with `gitblock-node rewards` and claims exactly its amount of GBT on chain with
 * `gitblock-node rewards claim`; a second claim finds nothing to claim.
 *
 * Anvil accounts (test mnemonic): 26 deploys and settles; 27 and 28 are the two operators.
 * Epoch numbers: 3000–3099.
 */
import OpenAI from 'openai';
import type { Address } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testAccount, testAccountKey } from '../../contracts/testing.ts';
import type { GitBlockDeployment } from '../../contracts/deploy.ts';
import { workflowIds } from '../../temporal.config.ts';
import { startControlWorker, type ControlWorker } from '../../workers/control.ts';
import { settlementWorkflow } from '../../workflows/settlement.ts';
import { stack, unique, workflowBundle } from '../helpers.ts';
import { runNodeCliToEnd as cli, type NodeProcess } from '../node-process.ts';
import { deployRewards, epochPostedEvents, gbtBalance, settlerChain, writeKeyFile } from '../settlement-helpers.ts';
import { startNetwork, type Network } from './harness.ts';
import { store } from '../../store/index.ts';

const s = stack();
const SETTLER = 26;
const EPOCH = 3000;
const operators = [27, 28].map((index) => ({ index, address: testAccount(index).address, keyFile: writeKeyFile(testAccountKey(index), 'operator.key') }));

let net: Network;
let client: OpenAI;
let deployment: GitBlockDeployment;
let settler: ControlWorker | undefined;
let nodes: NodeProcess[] = [];

/** Accrued, not voided ledger amounts per operator. */
async function accruedBy(operator: Address): Promise<{ amount: bigint; requests: number }> {
  const entries = await store(net.mongo.db).ledger.find({ operator, status: 'accrued' }).toArray();
  return { amount: entries.reduce((sum, e) => sum + BigInt(e.amount), 0n), requests: entries.length };
}

beforeAll(async () => {
  net = await startNetwork({ requestsPerMinute: 1000, tokensPerDay: 10_000_000 });
  deployment = await deployRewards(s.rpcUrl, SETTLER);
  nodes = await Promise.all(operators.map((op, i) => net.startNode(`rw-${i}`, ['--key-file', op.keyFile, '--context-size', '1024'])));
  const issued = await fetch(`${net.url}/v1/keys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  client = new OpenAI({ baseURL: `${net.url}/v1`, apiKey: ((await issued.json()) as { key: string }).key, maxRetries: 0 });
}, 120_000);

afterAll(async () => {
  await settler?.shutdown();
  await net?.stop();
});

describe('rewards for served requests', () => {
  it('accrue for both operators, settle on chain, and are claimed by each operator exactly once', async () => {
    // Both nodes have two slots: four requests at a time, usually spread over both operators.
    // Once a node is measured, the router may prefer it to a node it knows nothing about; if
    // one operator has served everything, its node stops (gracefully) and the other serves.
    for (let batch = 0; batch < 6; batch++) {
      const answers = await Promise.all(
        Array.from({ length: 4 }, (_, i) =>
          client.chat.completions.create({ model: 'gitblock-tiny', messages: [{ role: 'user', content: `Say something about the number ${batch * 4 + i}.` }], max_tokens: 12, temperature: 0 }),
        ),
      );
      // The answer comes before its accrual (issue 12): wait for each request's workflow to end.
      await Promise.all(answers.map((a) => net.temporal.workflow.getHandle(workflowIds.request(a.id.replace('chatcmpl-', ''))).result()));
      const counts = await Promise.all(operators.map((op) => accruedBy(op.address)));
      if (batch >= 1 && counts.every((c) => c.requests > 0)) break;
      if (counts.every((c) => c.requests > 0)) continue;
      const busy = counts.findIndex((c) => c.requests > 0);
      if (busy >= 0 && nodes[busy]!.child.exitCode === null) expect(await nodes[busy]!.stop('SIGTERM')).toBe(0);
    }
    const accrued = await Promise.all(operators.map((op) => accruedBy(op.address)));
    for (const a of accrued) expect(a.amount).toBeGreaterThan(0n);

    // Before settlement: accrued, nothing settled.
    const before = await cli(['rewards', '--gateway', net.url, '--key-file', operators[0]!.keyFile, '--json']);
    expect(before.stderr).toBe('');
    expect(JSON.parse(before.stdout)).toMatchObject({ operator: operators[0]!.address, accrued: { amount: accrued[0]!.amount.toString(), requests: accrued[0]!.requests }, settled: '0', claimable: '0' });

    // An epoch of 60 s that ends a moment from now: every accrual so far falls in it.
    const end = Math.floor(Date.now() / 1000) + 1;
    const schedule = { genesis: end - (EPOCH + 1) * 60, epochSeconds: 60 };
    await new Promise((r) => setTimeout(r, end * 1000 - Date.now() + 50));
    const taskQueue = unique('settle');
    settler = await startControlWorker({
      temporal: { address: s.temporalAddress, namespace: s.temporalNamespace },
      db: net.mongo.db,
      nc: net.nc,
      taskQueue,
      workflowBundle: await workflowBundle(),
      settlement: { schedule, chain: await settlerChain(s.rpcUrl, deployment, SETTLER) },
    });
    const summary = await net.temporal.workflow.execute(settlementWorkflow, { workflowId: workflowIds.settlement(EPOCH), taskQueue, args: [{ epoch: EPOCH }] });
    // Spot checks may void an accrual meanwhile: what is paid is what was accrued at compute time.
    const paid = await Promise.all(operators.map((op) => accruedBy(op.address)));
    expect(summary).toMatchObject({ status: 'settled', operators: 2, paid: (paid[0]!.amount + paid[1]!.amount).toString() });
    expect(await epochPostedEvents(s.rpcUrl, deployment, EPOCH)).toHaveLength(1);

    for (const [k, op] of operators.entries()) {
      const shown = await cli(['rewards', '--gateway', net.url, '--key-file', op.keyFile]);
      expect(shown.code).toBe(0);
      expect(shown.stdout).toMatch(new RegExp(`claimable .*\\(epochs ${EPOCH}\\)`));

      const balance = await gbtBalance(s.rpcUrl, deployment, op.address);
      const claimed = await cli(['rewards', 'claim', '--gateway', net.url, '--key-file', op.keyFile, '--rpc', s.rpcUrl]);
      expect(claimed.stderr).toBe('');
      expect(claimed.code).toBe(0);
      expect(claimed.stdout).toMatch(new RegExp(`^epoch ${EPOCH}: claimed [\\d.]+ GBT in tx 0x[0-9a-f]{64}$`, 'm'));
      expect((await gbtBalance(s.rpcUrl, deployment, op.address)) - balance).toBe(paid[k]!.amount);

      const again = await cli(['rewards', 'claim', '--gateway', net.url, '--key-file', op.keyFile, '--rpc', s.rpcUrl]);
      expect(again.code).toBe(0);
      expect(again.stdout.trim()).toBe('Nothing to claim.');
      expect((await gbtBalance(s.rpcUrl, deployment, op.address)) - balance).toBe(paid[k]!.amount);
    }
  }, 180_000);
});
