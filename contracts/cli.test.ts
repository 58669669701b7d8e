/**
 * `tsx contracts/cli.ts deploy`: flag validation, one-line errors, and a real deployment to the
 * shared test anvil. Accounts: test mnemonic indices 18–19 are reserved for this file
 * (18 deploys; 19 is the treasury). anvil's account 0 (--anvil-key) is left to the stack.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { gbtAbi } from './artifacts/index.ts';
import { main, parseDeployArgs, UsageError } from './cli.ts';
import { parseDeploymentFile } from './deploy.ts';
import { publicClientFor, testAccount, testAccountKey } from './testing.ts';

const { rpcUrl } = inject('stack');
const deployer = testAccount(18);
const treasury = testAccount(19).address;
// Addresses that only receive (never send), so they need no keys of their own.
const team = '0x00000000000000000000000000000000000A11CE';
const settler = '0x0000000000000000000000000000000000005E77';
const root = `0x${'ab'.repeat(32)}`;

let dir: string;
let keyFile: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gitblock-cli-test-'));
  keyFile = join(dir, 'deployer.key');
  writeFileSync(keyFile, `${testAccountKey(18)}\n`, { mode: 0o600 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  vi.restoreAllMocks();
});

/** A complete, valid flag set; `override` replaces or removes (undefined) single flags. */
function flags(override: Record<string, string | undefined> = {}): string[] {
  const all: Record<string, string | undefined> = {
    '--rpc': rpcUrl,
    '--key-file': keyFile,
    '--treasury': treasury,
    '--team': team,
    '--vesting-cliff': '31536000',
    '--vesting-duration': '126144000',
    '--airdrop-root': root,
    '--settler': settler,
    ...override,
  };
  return Object.entries(all).flatMap(([k, v]) => (v === undefined ? [] : v === '' ? [k] : [k, v]));
}

describe('parseDeployArgs', () => {
  it('accepts a complete flag set', () => {
    const cmd = parseDeployArgs(flags({ '--vesting-start': '1700000000', '--airdrop-deadline': '1800000000' }));
    expect(cmd).toMatchObject({
      rpcUrl,
      treasury,
      vestingStart: 1_700_000_000n,
      vestingCliff: 31_536_000n,
      vestingDuration: 126_144_000n,
      airdropDeadline: 1_800_000_000n,
    });
    expect(cmd.key).toBe(testAccountKey(18));
    expect(parseDeployArgs(flags()).vestingStart).toBe('now');
  });

  it.each([
    [{ '--rpc': undefined }, /missing --rpc/],
    [{ '--rpc': 'localhost:8545' }, /--rpc/],
    [{ '--key-file': undefined }, /missing --key-file/],
    [{ '--anvil-key': '' }, /either --key-file or --anvil-key/],
    [{ '--key-file': '/nonexistent/key' }, /cannot read/],
    [{ '--treasury': '0x1234' }, /--treasury: not an address/],
    [{ '--settler': '0x0000000000000000000000000000000000000000' }, /zero address/],
    [{ '--vesting-cliff': '1.5' }, /whole number of seconds/],
    [{ '--vesting-duration': '-5' }, /--vesting-duration/],
    [{ '--vesting-cliff': '200', '--vesting-duration': '100' }, /must not exceed/],
    [{ '--airdrop-root': '0x1234' }, /--airdrop-root/],
    [{ '--bogus': 'x' }, /bogus/],
  ])('rejects %o with one line', (override, message) => {
    let error: unknown;
    try {
      parseDeployArgs(flags(override));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain('\n');
  });

  it('never echoes a malformed key file', () => {
    const bad = join(dir, 'bad.key');
    writeFileSync(bad, 'secret-but-not-hex');
    expect(() => parseDeployArgs(flags({ '--key-file': bad }))).toThrow(/does not hold a 32-byte hex private key/);
    expect(() => parseDeployArgs(flags({ '--key-file': bad }))).not.toThrow(/secret/);
  });
});

describe('cli main', () => {
  it('deploys and writes the addresses file', async () => {
    const out = join(dir, 'deployment.json');
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    vi.spyOn(console, 'error').mockImplementation(() => {});
    expect(await main(['deploy', ...flags({ '--out': out })])).toBe(0);
    expect(log.mock.calls.at(-1)?.[0]).toContain(out);

    const deployment = parseDeploymentFile(JSON.parse(readFileSync(out, 'utf8')));
    expect(deployment.chainId).toBe(31337);
    expect(deployment.deployer).toBe(deployer.address);
    const pub = publicClientFor(rpcUrl);
    const balance = (who: `0x${string}`) =>
      pub.readContract({ address: deployment.gbt, abi: gbtAbi, functionName: 'balanceOf', args: [who] });
    expect(await balance(treasury)).toBe(300_000_000n * 10n ** 18n);
    expect(await balance(deployment.distributor)).toBe(400_000_000n * 10n ** 18n);
  });

  it('answers bad input with one line and exit code 2', async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    expect(await main(['deploy', ...flags({ '--treasury': 'nope' })])).toBe(2);
    expect(error).toHaveBeenCalledTimes(1);
    expect(String(error.mock.calls[0]?.[0])).toMatch(/^gitblock-contracts: --treasury: not an address: nope$/);
    expect(await main(['launch'])).toBe(2);
  });

  it('answers an unreachable RPC with one line and exit code 1', async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    expect(await main(['deploy', ...flags({ '--rpc': 'http://127.0.0.1:9' })])).toBe(1);
    const lines = error.mock.calls.map((c) => String(c[0]));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^gitblock-contracts: /);
    expect(lines[0]).not.toContain('\n');
  });
});
