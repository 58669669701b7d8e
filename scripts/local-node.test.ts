/** npm start's node: sized for the local demo unless its operator chose a context. */
import { describe, expect, it } from 'vitest';
import { LOCAL_CONTEXT_SIZE, localNodeArgs } from './local-node.ts';

describe("npm start's node", () => {
  it('holds a demo-sized context (SmolLM2 would take 4 × 8,192 tokens), never more than the model was trained for', () => {
    const base = { edge: '127.0.0.1:7443', nodeId: 'local-node-1', contextSizeChosen: false };
    expect(LOCAL_CONTEXT_SIZE).toBe(2048);
    expect(localNodeArgs({ ...base, model: 'smollm2-135m' })).toEqual(['--models', 'smollm2-135m', '--edge', '127.0.0.1:7443', '--node-id', 'local-node-1', '--context-size', '2048']);
    expect(localNodeArgs({ ...base, model: 'gitblock-tiny' })).toContain('2048');
    // GITBLOCK_NODE_CONTEXT_SIZE set: a flag would override the operator's choice, so none is given.
    expect(localNodeArgs({ ...base, model: 'smollm2-135m', contextSizeChosen: true })).not.toContain('--context-size');
    expect(() => localNodeArgs({ ...base, model: 'no-such-model' })).toThrow(/no-such-model/);
  });
});
