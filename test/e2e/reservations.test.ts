/**
 * A key's reservation settles from its request's outcome even when the gateway that made it
 * died before settling: on the real network, a request is reserved and started as the gateway
 * does, the gateway "dies" (nothing settles), the request completes on a real node, and the
 * reconciler settles it, exactly once however often and however concurrently it runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenSubject } from '../../domain/inference.ts';
import { reconcileReservations } from '../../gateway/reservations.ts';
import { timeouts, workflowIds } from '../../temporal.config.ts';
import { requestWorkflow, type RequestInput } from '../../workflows/request.ts';
import { unique } from '../helpers.ts';
import { startNetwork, type Network } from './harness.ts';
import { store } from '../../store/index.ts';

let net: Network;

beforeAll(async () => {
  net = await startNetwork({ requestsPerMinute: 1000, tokensPerDay: 100_000 });
  await net.startNode('reserve-a');
});
afterAll(async () => {
  await net?.stop();
});

/** A 16-token greedy chat request, as the gateway hands it to its workflow. */
const requestInput = (requestId: string): RequestInput => ({
  requestId,
  modelId: 'gitblock-tiny',
  messages: [{ role: 'user', content: 'Tell me about the sea.' }],
  sampling: { temperature: 0, maxTokens: 16 },
  subject: tokenSubject(requestId),
  promptTokensEstimate: 20,
});

describe('reservations of a gateway that died', () => {
  it('are settled by the reconciler from the completed request, exactly once', async () => {
    const { id: keyId } = await net.keys.issue('died');
    const requestId = unique('r').replace(/-/g, '');
    const input = requestInput(requestId);
    // What the gateway does before it answers: reserve (carrying the request id), record, start.
    const reserved = input.promptTokensEstimate + input.sampling.maxTokens;
    const reservation = await net.keys.reserveTokens(keyId, reserved, { requestId, promptTokens: input.promptTokensEstimate });
    expect(reservation.ok).toBe(true);
    await store(net.mongo.db).requests.insertOne({ _id: requestId, keyId, modelId: input.modelId, kind: 'chat', stream: true, status: 'routing', createdAt: new Date() });
    const handle = await net.temporal.workflow.start(requestWorkflow, { taskQueue: net.controlTaskQueue, workflowId: workflowIds.request(requestId), args: [input], workflowExecutionTimeout: timeouts.requestExecution });

    const deps = { keys: net.keys, temporal: net.temporal, db: net.mongo.db };

    // The gateway is gone; the request completes and is paid all the same.
    const outcome = await handle.result();
    expect(outcome.accrual.status).toBe('accrued');
    expect((await net.keys.usage(keyId)).usedTokens).toBe(reserved);

    // Within the grace its own gateway would have settled it: left alone.
    expect(await reconcileReservations(deps)).toEqual({ settled: 0 });
    // After it, settled; several reconcilers at once (one per gateway process) settle it once.
    const rounds = await Promise.all([1, 2, 3].map(() => reconcileReservations(deps, { graceMs: 0 })));
    expect(rounds.reduce((n, r) => n + r.settled, 0)).toBe(1);
    expect(await reconcileReservations(deps, { graceMs: 0 })).toEqual({ settled: 0 });
    expect((await net.keys.usage(keyId)).usedTokens).toBe(outcome.result.usage.totalTokens);
    expect(await store(net.mongo.db).apiKeySettlements.countDocuments({ _id: requestId })).toBe(1);
    expect(await store(net.mongo.db).apiKeyTokens.countDocuments({ ref: requestId, kind: 'settle' })).toBe(1);
  }, 90_000);

  it('ends unserved and unpaid a request whose start reached Temporal after its gateway had answered 503', async () => {
    const { id: keyId } = await net.keys.issue('late');
    const requestId = unique('r').replace(/-/g, '');
    await net.keys.reserveTokens(keyId, 36, { requestId, promptTokens: 20 });
    // The gateway stopped waiting for the start (Temporal paused) a moment ago: startBy is past.
    const input: RequestInput = { ...requestInput(requestId), startBy: Date.now() - 1_000 };
    const handle = await net.temporal.workflow.start(requestWorkflow, { taskQueue: net.controlTaskQueue, workflowId: workflowIds.request(requestId), args: [input], workflowExecutionTimeout: timeouts.requestExecution });
    await expect(handle.result()).rejects.toMatchObject({ cause: { type: 'REQUEST_STARTED_TOO_LATE' } });
    // No node was asked, nothing was paid, and the record says why it ended.
    const history = await handle.fetchHistory();
    expect(history.events?.some((e) => e.activityTaskScheduledEventAttributes)).toBe(false);
    expect(await store(net.mongo.db).ledger.countDocuments({ _id: requestId })).toBe(0);
    expect(await store(net.mongo.db).requests.findOne({ _id: requestId })).toMatchObject({ status: 'failed' });
    const deps = { keys: net.keys, temporal: net.temporal, db: net.mongo.db };
    await reconcileReservations(deps, { graceMs: 0 });
    expect(await store(net.mongo.db).apiKeySettlements.findOne({ _id: requestId })).toMatchObject({ actual: 0 });
    expect((await net.keys.usage(keyId)).usedTokens).toBe(0);
  });

  it('settles at no charge, and marks failed, a request whose workflow never started', async () => {
    const { id: keyId } = await net.keys.issue('never');
    const requestId = unique('r').replace(/-/g, '');
    await net.keys.reserveTokens(keyId, 500, { requestId, promptTokens: 40 });
    await store(net.mongo.db).requests.insertOne({ _id: requestId, keyId, modelId: 'gitblock-tiny', kind: 'chat', stream: false, status: 'routing', createdAt: new Date() });
    const deps = { keys: net.keys, temporal: net.temporal, db: net.mongo.db };
    // Not yet: a start may still be on its way.
    expect(await reconcileReservations(deps, { graceMs: 0 })).toEqual({ settled: 0 });
    expect(await reconcileReservations(deps, { graceMs: 0, notStartedMs: 0 })).toEqual({ settled: 1 });
    expect((await net.keys.usage(keyId)).usedTokens).toBe(0);
    expect(await store(net.mongo.db).requests.findOne({ _id: requestId })).toMatchObject({ status: 'failed' });
  });
});
