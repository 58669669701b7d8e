/**
 * Who verifies, on the real network: a node of a freshly registered operator is never asked to
 * check another operator's answer, not even as the only other node and not once it is out of
 * probation, so it can neither void an honest node's reward nor settle a tie-break; the same
 * node verifies once it has a record of passed checks, and a seed operator's node verifies
 * without one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIN_VERIFIER_PASSES } from '../../domain/verifiers.ts';
import { taskQueues, workflowIds } from '../../temporal.config.ts';
import type { NodeProcess } from '../node-process.ts';
import { newOperatorKey, startNetwork, type Network } from './harness.ts';
import { store } from '../../store/index.ts';

const seedOperator = newOperatorKey();
let net: Network;
let claimant: NodeProcess;
let newcomer: NodeProcess;

beforeAll(async () => {
  net = await startNetwork({ requestsPerMinute: 1000, tokensPerDay: 10_000_000 }, { seedVerifiers: [seedOperator.address] });
  [claimant, newcomer] = await Promise.all([net.startNode('claimant'), net.startNode('newcomer')]);
});
afterAll(async () => {
  await net?.stop();
});

/** The nodes a check's workflow asked to score the claim: its activities on a node's own queue. */
async function askedBy(requestId: string): Promise<string[]> {
  const history = await net.temporal.workflow.getHandle(workflowIds.spotCheck(requestId)).fetchHistory();
  const queues = (history.events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.taskQueue?.name).filter((q): q is string => !!q);
  return queues.map((q) => q.slice(taskQueues.node('').length));
}

async function ledgerStatus(requestId: string): Promise<unknown> {
  return (await store(net.mongo.db).ledger.findOne({ _id: requestId }))?.status;
}

describe('verifiers', () => {
  it('are never a freshly registered operator’s node, even the only other one: the check ends unverified and the reward stays', async () => {
    for (let i = 0; i < 3; i++) {
      const { outcome, requestId } = await net.serveAndCheck(claimant.nodeId, { temperature: 0, maxTokens: 16 }, `Fresh ${i}: tell me about lakes.`);
      expect(outcome).toMatchObject({ status: 'unverified', verdicts: [] });
      expect(outcome.reason).toMatch(/no established verifier/);
      expect(await askedBy(requestId)).toEqual([]);
      expect(await ledgerStatus(requestId)).toBe('accrued');
    }
    // Out of probation is not enough: an attacker gets there by serving a few requests.
    await net.establish(newcomer.nodeId, { passes: 0 });
    const { outcome, requestId } = await net.serveAndCheck(claimant.nodeId, { temperature: 0, maxTokens: 16 }, 'Active: tell me about lakes.');
    expect(outcome.status).toBe('unverified');
    expect(await askedBy(requestId)).toEqual([]);
  }, 120_000);

  it('include a node of another operator once it has a clean record of passed checks', async () => {
    await net.establish(newcomer.nodeId, { passes: MIN_VERIFIER_PASSES });
    const { outcome, requestId } = await net.serveAndCheck(claimant.nodeId, { temperature: 0, maxTokens: 16 }, 'Established: tell me about lakes.');
    expect(outcome.status, outcome.reason).toBe('passed');
    expect(outcome.verdicts.map((v) => v.verifierNodeId)).toEqual([newcomer.nodeId]);
    expect(await askedBy(requestId)).toEqual([newcomer.nodeId]);
  }, 120_000);

  it('include a seed operator’s active node without a record; a disagreement goes to two established operators, never to a newcomer', async () => {
    const seed = await net.startNode('seed', ['--key-file', seedOperator.keyFile]);
    await net.establish(seed.nodeId, { passes: 0 });
    // A liar's answer fails the first check; the tie-break needs a second established operator.
    // The claimant (fresh, of a third operator) is live and free, but never asked.
    const liar = await net.startNode('liar', ['--test-faults', 'random:1']);
    const { outcome, requestId } = await net.serveAndCheck(liar.nodeId, { temperature: 0, maxTokens: 16 }, 'Tell me about lakes.');
    expect(outcome.status, outcome.reason).toBe('failed');
    expect(outcome.verdicts.map((v) => v.verifierNodeId).sort()).toEqual([newcomer.nodeId, seed.nodeId].sort());
    expect(new Set(outcome.verdicts.map((v) => v.operator.toLowerCase())).size).toBe(2);
    expect((await askedBy(requestId)).sort()).toEqual([newcomer.nodeId, seed.nodeId].sort());
    expect(await ledgerStatus(requestId)).toBe('voided');
    await liar.stop('SIGKILL');
  }, 120_000);
});
