/**
 * The committed `contracts/artifacts/*.ts` must be exactly what a fresh compile of
 * `contracts/src` produces, so the ABI/bytecode the app deploys can never drift from the source.
 * On failure: run `npx tsx contracts/compile.ts` and commit the result.
 */
import { describe, expect, it } from 'vitest';
import { ARTIFACT_CONTRACTS, compileContracts, renderArtifacts, staleArtifacts } from './compile.ts';
import { gbtAbi } from './artifacts/index.ts';

describe('contract artifacts', () => {
  it('match a fresh compile of contracts/src', () => {
    const { contracts } = compileContracts();
    expect(contracts.map((c) => c.name)).toEqual([...ARTIFACT_CONTRACTS]);
    const stale = staleArtifacts(renderArtifacts(contracts));
    expect(stale, 'stale artifacts; run `npx tsx contracts/compile.ts`').toEqual([]);
  });

  it('compile deterministically (two compiles render the same text)', () => {
    const a = renderArtifacts(compileContracts().contracts);
    const b = renderArtifacts(compileContracts().contracts);
    expect([...a.entries()]).toEqual([...b.entries()]);
  });

  it('GBT exposes no way to mint after deployment', () => {
    const functions = gbtAbi.filter((item) => item.type === 'function').map((item) => item.name);
    expect(functions.some((name) => /mint/i.test(name))).toBe(false);
  });
});
