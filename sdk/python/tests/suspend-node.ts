/**
 * Test helper for the SDK's tests: suspends a node the way failed spot checks do, by sending its
 * actor failed verdicts, so the tests can see the network refuse (and time) a reinstatement.
 *
 *   node --import tsx sdk/python/tests/suspend-node.ts <temporal address> <namespace> <node id>
 *
 * Prints the node's state once it is suspended; exits 1 if it is not within 20 s.
 */
import { connectTemporalClient } from '../../../connections/temporal.ts';
import { SUSPEND_AFTER_VERIFICATION_FAILURES } from '../../../domain/reputation.ts';
import { workflowIds } from '../../../temporal.config.ts';
import { stateQuery, verificationVerdictSignal } from '../../../workflows/node-actor.ts';

const [address, namespace, nodeId] = process.argv.slice(2);
if (!address || !namespace || !nodeId) throw new Error('usage: suspend-node.ts <temporal address> <namespace> <node id>');
const client = await connectTemporalClient({ address, namespace });
try {
  const actor = client.workflow.getHandle(workflowIds.node(nodeId));
  for (let i = 0; i < SUSPEND_AFTER_VERIFICATION_FAILURES; i++) {
    await actor.signal(verificationVerdictSignal, { requestId: `sdk-test-${nodeId}-${i}`, passed: false, at: Date.now() });
  }
  const deadline = Date.now() + 20_000;
  for (;;) {
    const view = await actor.query(stateQuery);
    if (view.state === 'suspended') {
      console.log(view.state);
      break;
    }
    if (Date.now() > deadline) {
      console.error(`node ${nodeId} is ${view.state}, not suspended, 20 s after ${SUSPEND_AFTER_VERIFICATION_FAILURES} failed verdicts`);
      process.exitCode = 1;
      break;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
} finally {
  await client[Symbol.asyncDispose]();
}
