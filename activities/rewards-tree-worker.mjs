// @ts-check
/**
 * Builds an epoch's rewards tree on a worker thread (see activities/rewards-tree.ts): for
 * 100,000 operators it takes tens of seconds of CPU, which on the control worker's main thread
 * would stop heartbeats (the step would be timed out and retried forever) and every other
 * control activity. Plain JavaScript so that it loads in any runtime (tsx, vitest) unchanged.
 *
 * Message in:  { epoch: string, entries: [operator, amount][] } (amounts as decimal strings)
 * Message out: { root, proofs } (proofs in entry order) or { error }
 */
import { parentPort } from 'node:worker_threads';
import merkleTree from '@openzeppelin/merkle-tree';

const { StandardMerkleTree } = merkleTree;
if (!parentPort) throw new Error('rewards-tree-worker.mjs runs as a worker thread');
const port = parentPort;

/**
 * The proof of the leaf at `index` in a dumped tree ('standard-v1': nodes in an array, the
 * children of node i at 2i+1 and 2i+2): its sibling, then each ancestor's sibling. The same
 * walk as the library's getProof, without re-hashing the leaf and re-verifying the proof each
 * time, which is three quarters of the library's time per proof; a sample is cross-checked
 * against the library below.
 * @param {string[]} nodes
 * @param {number} index
 */
function proofOf(nodes, index) {
  const proof = [];
  for (let i = index; i > 0; i = Math.floor((i - 1) / 2)) proof.push(/** @type {string} */ (nodes[i % 2 === 1 ? i + 1 : i - 1]));
  return proof;
}

port.on('message', (/** @type {{ epoch: string, entries: [string, string][] }} */ message) => {
  try {
    const epoch = BigInt(message.epoch);
    const tree = StandardMerkleTree.of(
      message.entries.map(([operator, amount]) => [epoch, operator, BigInt(amount)]),
      ['uint64', 'address', 'uint256'],
    );
    const { tree: nodes, values } = tree.dump();
    const proofs = values.map(({ treeIndex }) => proofOf(nodes, treeIndex));
    const step = Math.max(1, Math.floor(values.length / 32));
    for (let i = 0; i < values.length; i += step) {
      const expected = tree.getProof(i);
      if (expected.length !== proofs[i]?.length || expected.some((h, k) => h !== proofs[i]?.[k])) throw new Error(`proof ${i} differs from the library's`);
    }
    port.postMessage({ root: tree.root, proofs });
  } catch (err) {
    port.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
});
