/** The status pages' stale-while-revalidate values: a view never waits for a top-up; a fresh read never joins an older one. */
import { describe, expect, it } from 'vitest';
import { Refreshed, RefreshedByKey } from './refreshed.ts';

/** A read that resolves when told to, counting its calls. */
function controlledRead() {
  const pending: ((v: number) => void)[] = [];
  let calls = 0;
  return {
    read: () => new Promise<number>((resolve) => (calls++, pending.push(resolve))),
    settle: (i: number, v: number) => pending[i]!(v),
    calls: () => calls,
  };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('Refreshed', () => {
  it('waits for the first read only; a stale value is served while one shared re-read runs', async () => {
    let now = 0;
    const r = controlledRead();
    const value = new Refreshed(r.read, 1_000, () => now);
    const first = value.get();
    const second = value.get();
    r.settle(0, 1);
    expect([await first, await second]).toEqual([1, 1]);
    expect(r.calls()).toBe(1);
    now = 500;
    expect(await value.get()).toBe(1);
    expect(r.calls()).toBe(1);
    now = 1_500;
    // Stale: served at once, one re-read started for all.
    expect(await value.get()).toBe(1);
    expect(await value.get()).toBe(1);
    expect(r.calls()).toBe(2);
    r.settle(1, 2);
    await tick();
    expect(await value.get()).toBe(2);
  });

  it('fresh() reads anew even while a background read is under way, and an older read landing later does not overwrite it', async () => {
    let now = 0;
    const r = controlledRead();
    const value = new Refreshed(r.read, 1_000, () => now);
    const first = value.get();
    r.settle(0, 1);
    await first;
    now = 2_000;
    await value.get(); // starts background read #1 (at 2,000)
    now = 2_100;
    const fresh = value.fresh(); // read #2 (at 2,100), not joined to #1
    expect(r.calls()).toBe(3);
    r.settle(2, 3);
    expect(await fresh).toBe(3);
    r.settle(1, 2); // the older background read lands last
    await tick();
    expect(await value.get()).toBe(3);
  });
});

describe('RefreshedByKey', () => {
  it('keeps one value per key and drops the least recently used beyond its size', async () => {
    const reads: string[] = [];
    const values = new RefreshedByKey(async (k: string) => (reads.push(k), k.toUpperCase()), 60_000, 2);
    expect(await values.get('a')).toBe('A');
    expect(await values.get('b')).toBe('B');
    expect(await values.get('a')).toBe('A'); // a is now the most recent
    expect(await values.get('c')).toBe('C'); // drops b
    expect(await values.get('a')).toBe('A');
    expect(await values.get('b')).toBe('B'); // read again
    expect(reads).toEqual(['a', 'b', 'c', 'b']);
  });
});
