/**
 * GBT, RewardsDistributor, TeamVesting and Airdrop on the shared test anvil, through viem.
 *
 * Accounts (test mnemonic indices 10–17 are reserved for this file; cli.test.ts uses 18–19):
 *   10 deployer and admin (DEFAULT_ADMIN_ROLE, PAUSER_ROLE, airdrop owner)
 *   11 treasury            12 team beneficiary       13 settler (SETTLER_ROLE)
 *   14–16 operators / airdrop recipients (they never send transactions)
 *   17 outsider: relays claims for others and tries everything it must not do
 * Every describe block deploys its own contracts, so no test depends on another's state.
 */
import {
  createTestClient,
  encodeFunctionData,
  getAddress,
  http,
  keccak256,
  parseAbi,
  parseEventLogs,
  slice,
  toHex,
  type Address,
  type Hex,
} from 'viem';
import { foundry } from 'viem/chains';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { airdropAbi, gbtAbi, gbtBytecode, rewardsDistributorAbi, teamVestingAbi } from './artifacts/index.ts';
import { DeployConfigError, deployGitBlock, type GitBlockDeployment, type TeamVestingSchedule } from './deploy.ts';
import { buildAirdropTree, buildRewardsTree, type RewardsTree } from './merkle.ts';
import { mined, publicClientFor, revertOf, testAccount, walletFor } from './testing.ts';

const { rpcUrl } = inject('stack');
const pub = publicClientFor(rpcUrl);
const admin = walletFor(rpcUrl, testAccount(10));
const settler = walletFor(rpcUrl, testAccount(13));
const outsider = walletFor(rpcUrl, testAccount(17));
const treasury = testAccount(11).address;
const team = testAccount(12).address;
const [op1, op2, op3] = [14, 15, 16].map((i) => testAccount(i).address) as [Address, Address, Address];

const UNIT = 10n ** 18n;
const SUPPLY = 1_000_000_000n * UNIT;
const POOL = 400_000_000n * UNIT;
const TREASURY = 300_000_000n * UNIT;
const TEAM = 200_000_000n * UNIT;
const AIRDROP = 100_000_000n * UNIT;
const DAY = 86_400n;
const YEAR = 365n * DAY;

const airdropTree = buildAirdropTree([
  { account: op1, amount: 1_000n * UNIT },
  { account: op2, amount: 2_000n * UNIT },
  { account: op3, amount: 3n },
]);

async function chainTime(): Promise<bigint> {
  return (await pub.getBlock({ blockTag: 'latest' })).timestamp;
}

/** A fresh deployment from account 10; defaults: vesting starts in a day, airdrop open 30 days. */
async function deploy(
  overrides: { team?: Partial<TeamVestingSchedule>; airdropDeadline?: bigint } = {},
): Promise<GitBlockDeployment> {
  const now = await chainTime();
  return deployGitBlock({
    rpcUrl,
    walletClient: admin,
    treasury,
    settler: settler.account.address,
    team: { beneficiary: team, start: now + DAY, cliffSeconds: YEAR, durationSeconds: 4n * YEAR, ...overrides.team },
    airdropRoot: airdropTree.root,
    airdropDeadline: overrides.airdropDeadline ?? now + 30n * DAY,
  });
}

function balanceOf(token: Address, who: Address): Promise<bigint> {
  return pub.readContract({ address: token, abi: gbtAbi, functionName: 'balanceOf', args: [who] });
}

/** Settler posts `tree` for its epoch with `total` (defaults to the tree's real total). */
function post(d: GitBlockDeployment, tree: RewardsTree, total: bigint = tree.total): Promise<Hex> {
  return settler.writeContract({
    address: d.distributor,
    abi: rewardsDistributorAbi,
    functionName: 'postEpoch',
    args: [tree.epoch, tree.root, total],
  });
}

/** Outsider submits `operator`'s claim from `tree` (anyone may relay a claim). */
function claim(d: GitBlockDeployment, tree: RewardsTree, operator: Address, amount?: bigint, proof?: Hex[]): Promise<Hex> {
  const c = tree.claims.get(operator);
  if (!c) throw new Error(`no claim for ${operator}`);
  return outsider.writeContract({
    address: d.distributor,
    abi: rewardsDistributorAbi,
    functionName: 'claim',
    args: [tree.epoch, operator, amount ?? c.amount, proof ?? c.proof],
  });
}

describe('deployment and GBT supply', () => {
  let d: GitBlockDeployment;
  beforeAll(async () => {
    d = await deploy();
  });

  it('mints exactly 40/30/20/10 of 1e9 GBT to distributor, treasury, vesting and airdrop', async () => {
    expect(POOL + TREASURY + TEAM + AIRDROP).toBe(SUPPLY);
    expect(await balanceOf(d.gbt, d.distributor)).toBe(POOL);
    expect(await balanceOf(d.gbt, treasury)).toBe(TREASURY);
    expect(await balanceOf(d.gbt, d.vesting)).toBe(TEAM);
    expect(await balanceOf(d.gbt, d.airdrop)).toBe(AIRDROP);
    expect(await pub.readContract({ address: d.gbt, abi: gbtAbi, functionName: 'totalSupply' })).toBe(SUPPLY);
    expect(await pub.readContract({ address: d.gbt, abi: gbtAbi, functionName: 'decimals' })).toBe(18);
    expect(await pub.readContract({ address: d.gbt, abi: gbtAbi, functionName: 'symbol' })).toBe('GBT');
  });

  it('wires the distributor and airdrop to the token at its predicted address', async () => {
    expect(await pub.readContract({ address: d.distributor, abi: rewardsDistributorAbi, functionName: 'token' })).toBe(
      d.gbt,
    );
    expect(await pub.readContract({ address: d.airdrop, abi: airdropAbi, functionName: 'token' })).toBe(d.gbt);
    expect(await pub.readContract({ address: d.airdrop, abi: airdropAbi, functionName: 'treasury' })).toBe(treasury);
  });

  it('has no mint entry point: a mint call reverts and the supply stays fixed', async () => {
    const data = encodeFunctionData({
      abi: parseAbi(['function mint(address to, uint256 amount)']),
      functionName: 'mint',
      args: [outsider.account.address, 1n],
    });
    await expect(pub.call({ account: outsider.account.address, to: d.gbt, data })).rejects.toThrow();
    expect(await pub.readContract({ address: d.gbt, abi: gbtAbi, functionName: 'totalSupply' })).toBe(SUPPLY);
  });

  it('GBT refuses a zero or duplicate allocation address', async () => {
    const deployGbt = (to: [Address, Address, Address, Address]) =>
      admin.deployContract({ abi: gbtAbi, bytecode: gbtBytecode, args: to });
    expect(await revertOf(deployGbt([d.distributor, treasury, d.vesting, d.distributor]), gbtAbi)).toEqual({
      name: 'DuplicateAllocationAddress',
      args: [d.distributor],
    });
    const zero: Address = '0x0000000000000000000000000000000000000000';
    expect((await revertOf(deployGbt([d.distributor, zero, d.vesting, d.airdrop]), gbtAbi)).name).toBe(
      'ZeroAllocationAddress',
    );
  });

  it('validates options before sending anything', async () => {
    const nonce = await pub.getTransactionCount({ address: admin.account.address });
    await expect(deploy({ team: { cliffSeconds: 5n * YEAR } })).rejects.toThrow(DeployConfigError);
    await expect(deploy({ airdropDeadline: 1n })).rejects.toThrow(/deadline/);
    expect(await pub.getTransactionCount({ address: admin.account.address })).toBe(nonce);
  });
});

describe('RewardsDistributor', () => {
  let d: GitBlockDeployment;
  let epoch1: RewardsTree;
  beforeAll(async () => {
    d = await deploy();
    epoch1 = buildRewardsTree(1n, [
      { operator: op1, amount: 1_000n * UNIT },
      { operator: op2, amount: 2_500n * UNIT + 5n * 10n ** 17n },
      { operator: op3, amount: 1n },
    ]);
  });

  const read = <const F extends 'SETTLER_ROLE' | 'PAUSER_ROLE' | 'unallocated' | 'outstanding' | 'totalAllocated'>(
    functionName: F,
  ) => pub.readContract({ address: d.distributor, abi: rewardsDistributorAbi, functionName });

  it('grants SETTLER_ROLE to the settler and PAUSER_ROLE to the admin only', async () => {
    const [settlerRole, pauserRole] = await Promise.all([read('SETTLER_ROLE'), read('PAUSER_ROLE')]);
    const hasRole = (role: Hex, who: Address) =>
      pub.readContract({ address: d.distributor, abi: rewardsDistributorAbi, functionName: 'hasRole', args: [role, who] });
    expect(await hasRole(settlerRole, settler.account.address)).toBe(true);
    expect(await hasRole(settlerRole, admin.account.address)).toBe(false);
    expect(await hasRole(pauserRole, admin.account.address)).toBe(true);
    expect(await hasRole(pauserRole, settler.account.address)).toBe(false);
  });

  it('only the settler can post', async () => {
    for (const wallet of [outsider, admin]) {
      const r = await revertOf(
        wallet.writeContract({
          address: d.distributor,
          abi: rewardsDistributorAbi,
          functionName: 'postEpoch',
          args: [epoch1.epoch, epoch1.root, epoch1.total],
        }),
      );
      expect(r.name).toBe('AccessControlUnauthorizedAccount');
      expect(r.args).toEqual([wallet.account.address, await read('SETTLER_ROLE')]);
    }
  });

  it('only a pauser can pause or unpause', async () => {
    for (const functionName of ['pause', 'unpause'] as const) {
      const r = await revertOf(outsider.writeContract({ address: d.distributor, abi: rewardsDistributorAbi, functionName }));
      expect(r.name).toBe('AccessControlUnauthorizedAccount');
    }
    const r = await revertOf(settler.writeContract({ address: d.distributor, abi: rewardsDistributorAbi, functionName: 'pause' }));
    expect(r.name).toBe('AccessControlUnauthorizedAccount');
  });

  it('posts an epoch once, allocating its total', async () => {
    const receipt = await mined(pub, post(d, epoch1));
    console.log(`[gas] RewardsDistributor.postEpoch: ${receipt.gasUsed}`);
    const [event] = parseEventLogs({ abi: rewardsDistributorAbi, logs: receipt.logs, eventName: 'EpochPosted' });
    expect(event?.args).toEqual({ epoch: 1n, root: epoch1.root, total: epoch1.total });
    expect(
      await pub.readContract({ address: d.distributor, abi: rewardsDistributorAbi, functionName: 'epochRoot', args: [1n] }),
    ).toBe(epoch1.root);
    expect(await read('totalAllocated')).toBe(epoch1.total);
    expect(await read('outstanding')).toBe(epoch1.total);
    expect(await read('unallocated')).toBe(POOL - epoch1.total);

    // A second post for the same epoch reverts, with the same or any other root.
    const again = await revertOf(post(d, epoch1));
    expect(again).toEqual({ name: 'EpochAlreadyPosted', args: [1n] });
    const other = buildRewardsTree(1n, [{ operator: op1, amount: 1n }]);
    expect((await revertOf(post(d, other))).name).toBe('EpochAlreadyPosted');
  });

  it('rejects an empty root or a zero total', async () => {
    const tree = buildRewardsTree(2n, [{ operator: op1, amount: 1n }]);
    expect((await revertOf(post(d, { ...tree, root: `0x${'00'.repeat(32)}` }))).name).toBe('EmptyRoot');
    expect((await revertOf(post(d, tree, 0n))).name).toBe('ZeroTotal');
  });

  it('pays a claim exactly, to the operator, whoever submits it', async () => {
    const amount = epoch1.claims.get(op2)?.amount ?? 0n;
    const [opBefore, poolBefore, relayerBefore] = await Promise.all([
      balanceOf(d.gbt, op2),
      balanceOf(d.gbt, d.distributor),
      balanceOf(d.gbt, outsider.account.address),
    ]);
    const receipt = await mined(pub, claim(d, epoch1, op2));
    console.log(`[gas] RewardsDistributor.claim (3-leaf tree, first claim of the epoch): ${receipt.gasUsed}`);
    expect(await balanceOf(d.gbt, op2)).toBe(opBefore + amount);
    expect(await balanceOf(d.gbt, d.distributor)).toBe(poolBefore - amount);
    expect(await balanceOf(d.gbt, outsider.account.address)).toBe(relayerBefore);
    const [event] = parseEventLogs({ abi: rewardsDistributorAbi, logs: receipt.logs, eventName: 'Claimed' });
    expect(event?.args).toEqual({ epoch: 1n, operator: op2, amount });
    expect(
      await pub.readContract({
        address: d.distributor,
        abi: rewardsDistributorAbi,
        functionName: 'isClaimed',
        args: [1n, op2],
      }),
    ).toBe(true);
    expect(await read('outstanding')).toBe(epoch1.total - amount);
  });

  it('rejects a second claim of the same leaf', async () => {
    expect(await revertOf(claim(d, epoch1, op2))).toEqual({ name: 'AlreadyClaimed', args: [1n, op2] });
  });

  it('rejects a forged proof, a wrong amount, a wrong operator, another epoch and an unposted epoch', async () => {
    const forged = [keccak256(toHex('forged')), keccak256(toHex('proof'))];
    expect((await revertOf(claim(d, epoch1, op1, undefined, forged))).name).toBe('InvalidProof');
    const amount1 = epoch1.claims.get(op1)?.amount ?? 0n;
    expect((await revertOf(claim(d, epoch1, op1, amount1 + 1n))).name).toBe('InvalidProof');
    // op1's amount and proof, submitted for op3.
    const proof1 = epoch1.claims.get(op1)?.proof ?? [];
    const wrongOperator = outsider.writeContract({
      address: d.distributor,
      abi: rewardsDistributorAbi,
      functionName: 'claim',
      args: [1n, op3, amount1, proof1],
    });
    expect((await revertOf(wrongOperator)).name).toBe('InvalidProof');

    // A valid epoch-3 leaf replayed against epoch 1's root.
    const epoch3 = buildRewardsTree(3n, [
      { operator: op1, amount: amount1 },
      { operator: op2, amount: 7n },
    ]);
    expect((await revertOf(claim(d, { ...epoch3, epoch: 1n }, op1))).name).toBe('InvalidProof');
    expect(await revertOf(claim(d, epoch3, op1))).toEqual({ name: 'EpochNotPosted', args: [3n] });
    expect(await balanceOf(d.gbt, op1)).toBe(0n);
  });

  it('pause blocks claims and posts until unpaused', async () => {
    await mined(pub, admin.writeContract({ address: d.distributor, abi: rewardsDistributorAbi, functionName: 'pause' }));
    expect((await revertOf(claim(d, epoch1, op1))).name).toBe('EnforcedPause');
    const epoch4 = buildRewardsTree(4n, [{ operator: op1, amount: 1n }]);
    expect((await revertOf(post(d, epoch4))).name).toBe('EnforcedPause');
    await mined(pub, admin.writeContract({ address: d.distributor, abi: rewardsDistributorAbi, functionName: 'unpause' }));
    await mined(pub, claim(d, epoch1, op1));
    expect(await balanceOf(d.gbt, op1)).toBe(epoch1.claims.get(op1)?.amount);
  });

  it('never lets claims exceed the epoch total, even if the tree sums to more', async () => {
    // A buggy settlement posts 1,000 GBT for leaves that sum to 1,200.
    const tree = buildRewardsTree(5n, [
      { operator: op1, amount: 600n * UNIT },
      { operator: op2, amount: 600n * UNIT },
    ]);
    const posted = await mined(pub, post(d, tree, 1_000n * UNIT));
    console.log(`[gas] RewardsDistributor.postEpoch (a later epoch): ${posted.gasUsed}`);
    await mined(pub, claim(d, tree, op1));
    expect(await revertOf(claim(d, tree, op2))).toEqual({
      name: 'EpochTotalExceeded',
      args: [5n, 600n * UNIT, 400n * UNIT],
    });
    const info = await pub.readContract({
      address: d.distributor,
      abi: rewardsDistributorAbi,
      functionName: 'epochInfo',
      args: [5n],
    });
    expect(info).toEqual([tree.root, 1_000n * UNIT, 600n * UNIT]);
  });

  it('never lets posts allocate more than the unallocated pool', async () => {
    const unallocated = await read('unallocated');
    const tooMuch = buildRewardsTree(6n, [{ operator: op3, amount: unallocated + 1n }]);
    expect(await revertOf(post(d, tooMuch))).toEqual({
      name: 'InsufficientUnallocated',
      args: [unallocated + 1n, unallocated],
    });
    // Exactly what is left is fine; after that nothing more can be posted.
    const rest = buildRewardsTree(6n, [{ operator: op3, amount: unallocated }]);
    await mined(pub, post(d, rest));
    expect(await read('unallocated')).toBe(0n);
    const more = buildRewardsTree(7n, [{ operator: op3, amount: 1n }]);
    expect(await revertOf(post(d, more))).toEqual({ name: 'InsufficientUnallocated', args: [1n, 0n] });
    // Claiming keeps the books balanced: balance and outstanding drop together.
    await mined(pub, claim(d, rest, op3));
    expect(await read('unallocated')).toBe(0n);
    expect(await balanceOf(d.gbt, d.distributor)).toBe(await read('outstanding'));
    expect(await read('totalAllocated')).toBe(POOL);
  });
});

describe('RewardsDistributor gas with a realistic tree', () => {
  it('reports gas for postEpoch and claim with 1,024 operators', async () => {
    const d = await deploy();
    const operators = Array.from({ length: 1024 }, (_, i) =>
      getAddress(slice(keccak256(toHex(`gas-operator-${i}`)), 12)),
    );
    const tree = buildRewardsTree(
      42n,
      operators.map((operator, i) => ({ operator, amount: BigInt(i + 1) * 10n ** 15n })),
    );
    const posted = await mined(pub, post(d, tree));
    const first = await mined(pub, claim(d, tree, operators[0] as Address));
    const second = await mined(pub, claim(d, tree, operators[1] as Address));
    const depth = tree.claims.get(operators[0] as Address)?.proof.length;
    console.log(`[gas] RewardsDistributor.postEpoch (1,024 operators): ${posted.gasUsed}`);
    console.log(`[gas] RewardsDistributor.claim (1,024 operators, proof of ${depth}, first of epoch): ${first.gasUsed}`);
    console.log(`[gas] RewardsDistributor.claim (1,024 operators, proof of ${depth}, later claim): ${second.gasUsed}`);
    expect(depth).toBe(10);
    // Guard rails for the benchmark: a claim must stay cheap.
    expect(first.gasUsed).toBeLessThan(120_000n);
  });
});

describe('TeamVesting', () => {
  it('vests nothing before the cliff and linearly after it', async () => {
    const d = await deploy();
    const readV = <const F extends 'start' | 'cliff' | 'duration' | 'owner'>(functionName: F) =>
      pub.readContract({ address: d.vesting, abi: teamVestingAbi, functionName });
    const [start, cliff, duration, owner] = await Promise.all([
      readV('start'),
      readV('cliff'),
      readV('duration'),
      readV('owner'),
    ]);
    expect(owner).toBe(team);
    expect(cliff - start).toBe(YEAR);
    expect(duration).toBe(4n * YEAR);
    const vested = (t: bigint) =>
      pub.readContract({ address: d.vesting, abi: teamVestingAbi, functionName: 'vestedAmount', args: [d.gbt, t] });

    expect(await vested(start)).toBe(0n);
    expect(await vested(cliff - 1n)).toBe(0n);
    // From the cliff on, the schedule counts from the start: a year in, a quarter has vested.
    expect(await vested(cliff)).toBe(TEAM / 4n);
    expect(await vested(start + 2n * YEAR)).toBe(TEAM / 2n);
    const odd = start + 2n * YEAR + 12_345n;
    expect(await vested(odd)).toBe((TEAM * (odd - start)) / duration);
    expect(await vested(start + duration)).toBe(TEAM);
    expect(await vested(start + duration + YEAR)).toBe(TEAM);

    // Today is before the cliff: release works but pays nothing.
    const releasable = await pub.readContract({
      address: d.vesting,
      abi: teamVestingAbi,
      functionName: 'releasable',
      args: [d.gbt],
    });
    expect(releasable).toBe(0n);
    await mined(
      pub,
      outsider.writeContract({ address: d.vesting, abi: teamVestingAbi, functionName: 'release', args: [d.gbt] }),
    );
    expect(await balanceOf(d.gbt, team)).toBe(0n);
    expect(await balanceOf(d.gbt, d.vesting)).toBe(TEAM);
  });

  it('releases exactly the linearly vested amount after the cliff', async () => {
    // Start two years ago (chain time): past the one-year cliff, half-way through four years.
    const now = await chainTime();
    const d = await deploy({ team: { start: now - 2n * YEAR } });
    const receipt = await mined(
      pub,
      outsider.writeContract({ address: d.vesting, abi: teamVestingAbi, functionName: 'release', args: [d.gbt] }),
    );
    const t = (await pub.getBlock({ blockNumber: receipt.blockNumber })).timestamp;
    const expected = (TEAM * (t - (now - 2n * YEAR))) / (4n * YEAR);
    expect(await balanceOf(d.gbt, team)).toBe(expected);
    expect(await balanceOf(d.gbt, d.vesting)).toBe(TEAM - expected);
    expect(expected).toBeGreaterThanOrEqual(TEAM / 2n);
  });
});

describe('Airdrop', () => {
  let d: GitBlockDeployment;
  // A second deployment whose claim window closes a few seconds after it opens, for the sweep.
  let short: GitBlockDeployment;
  let shortDeadline: bigint;
  const claimAirdrop = (deployment: GitBlockDeployment, account: Address, amount?: bigint) => {
    const c = airdropTree.claims.get(account);
    if (!c) throw new Error(`no airdrop claim for ${account}`);
    return outsider.writeContract({
      address: deployment.airdrop,
      abi: airdropAbi,
      functionName: 'claim',
      args: [account, amount ?? c.amount, c.proof],
    });
  };

  beforeAll(async () => {
    d = await deploy();
    shortDeadline = (await chainTime()) + 6n;
    short = await deploy({ airdropDeadline: shortDeadline });
    await mined(pub, claimAirdrop(short, op1));
  });

  it('pays each leaf exactly once', async () => {
    const receipt = await mined(pub, claimAirdrop(d, op2));
    console.log(`[gas] Airdrop.claim: ${receipt.gasUsed}`);
    expect(await balanceOf(d.gbt, op2)).toBe(2_000n * UNIT);
    expect(await balanceOf(d.gbt, d.airdrop)).toBe(AIRDROP - 2_000n * UNIT);
    expect(await pub.readContract({ address: d.airdrop, abi: airdropAbi, functionName: 'isClaimed', args: [op2] })).toBe(
      true,
    );
    expect(await revertOf(claimAirdrop(d, op2))).toEqual({ name: 'AlreadyClaimed', args: [op2] });
  });

  it('rejects a wrong amount or an account that is not in the tree', async () => {
    expect((await revertOf(claimAirdrop(d, op1, 1_001n * UNIT))).name).toBe('InvalidProof');
    const proof = airdropTree.claims.get(op1)?.proof ?? [];
    const stranger = outsider.writeContract({
      address: d.airdrop,
      abi: airdropAbi,
      functionName: 'claim',
      args: [outsider.account.address, 1_000n * UNIT, proof],
    });
    expect((await revertOf(stranger)).name).toBe('InvalidProof');
  });

  it('cannot be swept while claims are open, nor by anyone but the owner', async () => {
    expect((await revertOf(admin.writeContract({ address: d.airdrop, abi: airdropAbi, functionName: 'sweep' }))).name).toBe(
      'ClaimWindowOpen',
    );
    expect(
      (await revertOf(outsider.writeContract({ address: d.airdrop, abi: airdropAbi, functionName: 'sweep' }))).name,
    ).toBe('OwnableUnauthorizedAccount');
  });

  it('after the deadline, refuses claims and sweeps the rest to the treasury', async () => {
    // Wait for chain time to pass the deadline without moving the shared chain's clock:
    // mine an empty block every half second (anvil stamps blocks with the wall clock).
    const testClient = createTestClient({ chain: foundry, mode: 'anvil', transport: http(rpcUrl) });
    while ((await chainTime()) <= shortDeadline) {
      await new Promise((r) => setTimeout(r, 500));
      await testClient.mine({ blocks: 1 });
    }
    expect((await revertOf(claimAirdrop(short, op2))).name).toBe('ClaimWindowClosed');
    const before = await balanceOf(short.gbt, treasury);
    await mined(pub, admin.writeContract({ address: short.airdrop, abi: airdropAbi, functionName: 'sweep' }));
    expect(await balanceOf(short.gbt, treasury)).toBe(before + AIRDROP - 1_000n * UNIT);
    expect(await balanceOf(short.gbt, short.airdrop)).toBe(0n);
    expect(await balanceOf(short.gbt, op1)).toBe(1_000n * UNIT);
  });
});
