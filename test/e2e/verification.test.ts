/**
 * Verification on the real network: registered honest nodes of separate operators check each
 * other's answers without false alarms; each fault mode is caught by the spot-check workflow,
 * the faulty node is suspended within a stated number of checks, and its accruals are voided.
 *
 * Only established nodes verify (domain/verifiers.ts): the honest nodes' operators are this
 * network's seed verifiers, and each honest node is brought out of probation before the tests.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenSubject, type InferInput, type Sampling } from '../../domain/inference.ts';
import { normalizeJsonSchema } from '../../domain/json-schema.ts';
import { SUSPEND_AFTER_CONSECUTIVE_VERIFICATION_FAILURES } from '../../domain/reputation.ts';
import { workflowIds } from '../../temporal.config.ts';
import { inferenceWorkflow } from '../../workflows/inference.ts';
import { stateQuery } from '../../workflows/node-actor.ts';
import { unique } from '../helpers.ts';
import type { NodeProcess } from '../node-process.ts';
import { newOperatorKey, startNetwork, type Network } from './harness.ts';
import { store } from '../../store/index.ts';

let net: Network;
let honest: NodeProcess[];
const operatorOf = new Map<string, string>();

beforeAll(async () => {
  const keys = ['h1', 'h2', 'h3'].map((name) => ({ name, ...newOperatorKey() }));
  net = await startNetwork({ requestsPerMinute: 1000, tokensPerDay: 10_000_000 }, { seedVerifiers: keys.map((k) => k.address) });
  honest = await Promise.all(keys.map((k) => net.startNode(k.name, ['--key-file', k.keyFile])));
  for (const node of honest) {
    operatorOf.set(node.nodeId, await net.operatorOf(node.nodeId));
    await net.establish(node.nodeId, { passes: 0 });
  }
});
afterAll(async () => {
  await net?.stop();
});

async function stateOf(nodeId: string): Promise<string> {
  return (await net.temporal.workflow.getHandle(workflowIds.node(nodeId)).query(stateQuery)).state;
}

describe('spot checks', () => {
  it('pass every honest answer, greedy and sampled, checked by another operator', async () => {
    const failures: string[] = [];
    for (let i = 0; i < 12; i++) {
      const claimant = honest[i % 3]!;
      const sampling: Sampling = i % 2 ? { temperature: 0.9, seed: i, maxTokens: 24 } : { temperature: 0, maxTokens: 24 };
      const { outcome } = await net.serveAndCheck(claimant.nodeId, sampling, `Question number ${i}: tell me about rivers.`);
      if (outcome.status !== 'passed') failures.push(`${i}: ${outcome.status} ${outcome.reason}`);
    }
    expect(failures).toEqual([]);
    for (const node of honest) expect(await stateOf(node.nodeId)).not.toBe('suspended');
  }, 180_000);

  it('pass honest constrained answers (JSON schema, json_object, penalties, logit_bias), the constraints travelling with the claim', async () => {
    const schema = normalizeJsonSchema({ type: 'object', properties: { river: { type: 'string', maxLength: 16 }, long: { type: 'boolean' } } });
    const constrained: Partial<Sampling>[] = [
      { grammar: { type: 'json_schema', schema } },
      { grammar: { type: 'json' } },
      { frequencyPenalty: 1.2, presencePenalty: 0.4 },
      { logitBias: { '1072': -100, '1180': 4 } },
    ];
    const failures: string[] = [];
    for (let i = 0; i < 8; i++) {
      const claimant = honest[i % 3]!;
      const base: Sampling = i % 2 ? { temperature: 0.9, seed: i, maxTokens: 32 } : { temperature: 0, maxTokens: 32 };
      const { outcome } = await net.serveAndCheck(claimant.nodeId, { ...base, ...constrained[i % constrained.length] }, `Constrained question ${i}: tell me about rivers.`);
      if (outcome.status !== 'passed') failures.push(`${i}: ${outcome.status} ${outcome.reason}`);
    }
    expect(failures).toEqual([]);
  }, 180_000);

  // Two failed checks in a row suspend a node; the bound here allows one unlucky pass.
  const bound = SUSPEND_AFTER_CONSECUTIVE_VERIFICATION_FAILURES + 1;
  for (const fault of ['random', 'truncate', 'impostor'] as const) {
    it(`catch a node that answers with ${fault === 'random' ? 'random tokens' : fault === 'truncate' ? 'truncated answers' : 'a different model'}, suspend it within ${bound} checks, and void its accruals`, async () => {
      const liar = await net.startNode(`liar-${fault}`, ['--test-faults', `${fault}:1`]);
      const voided: string[] = [];
      let checks = 0;
      while ((await stateOf(liar.nodeId)) !== 'suspended') {
        expect(checks, `still ${await stateOf(liar.nodeId)} after ${checks} checks`).toBeLessThan(bound);
        const sampling: Sampling = checks % 2 ? { temperature: 0.8, seed: checks, maxTokens: 32 } : { temperature: 0, maxTokens: 32 };
        const { outcome, requestId } = await net.serveAndCheck(liar.nodeId, sampling, `Tell me about ${fault} things (${checks}).`);
        checks++;
        expect(outcome.status, outcome.reason).toBe('failed');
        voided.push(requestId);
        // The node actor projects verdicts within a couple of seconds.
        for (let i = 0; i < 40 && (await stateOf(liar.nodeId)) !== 'suspended' && checks >= SUSPEND_AFTER_CONSECUTIVE_VERIFICATION_FAILURES; i++) await new Promise((r) => setTimeout(r, 100));
      }
      const ledger = await store(net.mongo.db).ledger.find({ _id: { $in: voided } }).toArray();
      expect(ledger.map((e) => e['status'])).toEqual(voided.map(() => 'voided'));
      expect(ledger.every((e) => String(e['voidReason']).startsWith('spot check failed'))).toBe(true);
      await liar.stop('SIGKILL');
    }, 180_000);
  }

  it('sample requests served through the gateway and record the verdict in their receipt', async () => {
    const { key } = (await (await fetch(`${net.url}/v1/keys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).json()) as { key: string };
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    let verification: { status: string; verdicts?: { operator: string }[] } | undefined;
    // The honest nodes are active, checked at 0.25 decaying by 0.95 a passed check (about 0.2
    // after the checks above): 60 requests all unsampled has odds about 1e-6.
    for (let i = 0; i < 60 && verification?.status !== 'passed'; i++) {
      const response = await fetch(`${net.url}/v1/chat/completions`, { method: 'POST', headers, body: JSON.stringify({ model: 'gitblock-tiny', messages: [{ role: 'user', content: `Hi ${i}` }], max_tokens: 16 }) });
      const requestId = response.headers.get('x-gitblock-request-id')!;
      const node = response.headers.get('x-gitblock-node')!;
      for (let t = 0; t < 50; t++) {
        const receipt = (await (await fetch(`${net.url}/v1/requests/${requestId}`, { headers })).json()) as { verification: typeof verification };
        verification = receipt.verification;
        // No verification yet: the record is written just after the answer (issue 12).
        if (verification && verification.status !== 'pending') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      if (verification?.status === 'passed') expect(verification.verdicts![0]!.operator).not.toBe(operatorOf.get(node));
    }
    expect(verification?.status).toBe('passed');
  }, 180_000);

  it('fail over from a node that stalls mid-answer', async () => {
    const staller = await net.startNode('staller', ['--test-faults', 'stall:1']);
    const requestId = unique('s').replace(/-/g, '');
    const input: InferInput = { requestId, modelId: 'gitblock-tiny', messages: [{ role: 'user', content: 'Hello' }], sampling: { temperature: 0, maxTokens: 40 }, subject: tokenSubject(requestId) };
    const outcome = await net.temporal.workflow.execute(inferenceWorkflow, { taskQueue: net.control.worker.options.taskQueue, workflowId: `req-${requestId}`, args: [input, [staller.nodeId, honest[0]!.nodeId]] });
    expect(outcome.attempts[0]).toMatchObject({ outcome: 'timeout' });
    expect(outcome.result.nodeId).toBe(honest[0]!.nodeId);
    expect(outcome.result.tokens).toHaveLength(40);
    await staller.stop('SIGKILL');
  }, 120_000);
});
