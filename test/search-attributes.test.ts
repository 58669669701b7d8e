/**
 * The team finds an operator's work in the Temporal UI by `GitblockOperator`: the node actor
 * (set at registration, through the edge), each request (once its operator is known) and each
 * spot check of its answers carry it, on the real stack with a real node process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { searchAttributes, workflowIds } from '../temporal.config.ts';
import { startNetwork, type Network } from './e2e/harness.ts';

let net: Network;
beforeAll(async () => {
  net = await startNetwork({ requestsPerMinute: 1000, tokensPerDay: 10_000_000 });
});
afterAll(async () => {
  await net?.stop();
});

describe('the GitblockOperator search attribute', () => {
  it('is set on the node actor, its requests and their spot checks, and finds them all', async () => {
    const node = await net.startNode('sa');
    const operator = await net.operatorOf(node.nodeId);
    const issued = await fetch(`${net.url}/v1/keys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    const { key } = (await issued.json()) as { key: string };

    const actor = await net.temporal.workflow.getHandle(workflowIds.node(node.nodeId)).describe();
    expect(actor.searchAttributes).toMatchObject({ [searchAttributes.node.name]: [node.nodeId], [searchAttributes.operator.name]: [operator] });

    // A node on probation is checked at 1 in 2: enough requests that one is, all but surely (1 in 2^10 not).
    const requests: string[] = [];
    for (let i = 0; i < 10; i++) {
      const response = await fetch(`${net.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gitblock-tiny', messages: [{ role: 'user', content: `Question ${i}` }], max_tokens: 4 }),
      });
      expect(response.status).toBe(200);
      requests.push(response.headers.get('x-gitblock-request-id')!);
    }
    const checks: string[] = [];
    for (const id of requests) {
      const request = net.temporal.workflow.getHandle(workflowIds.request(id));
      await request.result();
      expect((await request.describe()).searchAttributes[searchAttributes.operator.name], id).toEqual([operator]);
      try {
        const check = await net.temporal.workflow.getHandle(workflowIds.spotCheck(id)).describe();
        expect(check.searchAttributes).toMatchObject({ [searchAttributes.operator.name]: [operator], [searchAttributes.node.name]: [node.nodeId], [searchAttributes.model.name]: ['gitblock-tiny'] });
        checks.push(workflowIds.spotCheck(id));
      } catch (err) {
        if ((err as Error).name !== 'WorkflowNotFoundError') throw err;
      }
    }
    expect(checks.length).toBeGreaterThan(0);

    // What the UI's filter does: a visibility query by operator (visibility lags a little).
    const wanted = [workflowIds.node(node.nodeId), ...requests.map(workflowIds.request), ...checks].sort();
    const deadline = Date.now() + 20_000;
    let found: string[] = [];
    while (Date.now() < deadline) {
      found = [];
      for await (const w of net.temporal.workflow.list({ query: `${searchAttributes.operator.name} = '${operator}'` })) found.push(w.workflowId);
      if (wanted.every((id) => found.includes(id))) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(found.sort()).toEqual(wanted);
  }, 240_000);
});
