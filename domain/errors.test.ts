import { ActivityFailure, ApplicationFailure, RetryState } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { BaseError, codedError, coded, walk } from './errors.ts';

class LeafError extends codedError('LEAF_FAILED') {
  override name = 'LeafError';
}

describe('BaseError', () => {
  it('keeps the short message as the message, with code, details and cause apart', () => {
    const cause = new Error('socket closed');
    const err = new BaseError('cannot store the key', { code: 'STORE_FAILED', details: 'insertOne timed out after 5 s', cause });
    expect([err.message, err.shortMessage, err.code, err.details, err.cause]).toEqual(['cannot store the key', 'cannot store the key', 'STORE_FAILED', 'insertOne timed out after 5 s', cause]);
    expect(err).toBeInstanceOf(Error);
  });

  it('gives each subclass its own name and a stable code', () => {
    const err = new LeafError('leaf');
    expect([err.name, err.code, err instanceof BaseError]).toEqual(['LeafError', 'LEAF_FAILED', true]);
  });

  it('walks to the innermost cause, or to the first the predicate holds for', () => {
    const leaf = new LeafError('leaf');
    const middle = new BaseError('middle', { code: 'MIDDLE', cause: leaf });
    const top = new Error('top', { cause: middle });
    expect(walk(top)).toBe(leaf);
    expect(middle.walk()).toBe(leaf);
    expect(walk(top, (e) => e instanceof BaseError)).toBe(middle);
    expect(walk(top, (e) => e instanceof TypeError)).toBeUndefined();
    expect(coded(top, ['LEAF_FAILED'])).toBe(leaf);
    expect(walk('not an error')).toBe('not an error');
  });

  it('finds a Temporal ApplicationFailure inside an ActivityFailure, and stops on a cycle', () => {
    const app = ApplicationFailure.nonRetryable('no node', 'NO_NODE_AVAILABLE');
    const activity = new ActivityFailure('activity failed', 'infer', 'a1', RetryState.NON_RETRYABLE_FAILURE, 'identity', app);
    expect((walk(activity, (e) => e instanceof ApplicationFailure) as ApplicationFailure).type).toBe('NO_NODE_AVAILABLE');
    const a: { cause?: unknown } = {};
    const b = { cause: a };
    a.cause = b;
    expect(walk(a, () => false)).toBeUndefined();
  });
});
