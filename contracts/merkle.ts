/**
 * Merkle trees for GBT payouts, built with `@openzeppelin/merkle-tree`'s StandardMerkleTree so
 * roots and proofs match what RewardsDistributor.sol and Airdrop.sol verify with OpenZeppelin's
 * MerkleProof: leaf = keccak256(bytes.concat(keccak256(abi.encode(...values)))), sorted-pair
 * node hashing.
 *
 * Amounts are bigint end to end (wei, 18 decimals); a `number` is rejected at runtime, so a value
 * that went through floating point (JSON.parse, Number()) cannot slip into a root.
 *
 * The root does not depend on the order of the entries: StandardMerkleTree sorts leaves by hash.
 */
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { encodeAbiParameters, getAddress, isAddress, keccak256, zeroAddress, type Address, type Hex } from 'viem';
import { codedError } from '../domain/errors.ts';

/** Solidity types of a rewards leaf, in order: (epoch, operator, amount). */
export const REWARDS_LEAF_ENCODING = ['uint64', 'address', 'uint256'] as const;
/** Solidity types of an airdrop leaf, in order: (account, amount). */
export const AIRDROP_LEAF_ENCODING = ['address', 'uint256'] as const;

const MAX_UINT64 = (1n << 64n) - 1n;
const MAX_UINT256 = (1n << 256n) - 1n;

/** An operator's reward for one epoch, in GBT wei. */
export interface RewardEntry {
  operator: Address;
  amount: bigint;
}

/** Everything needed to submit one `RewardsDistributor.claim(epoch, operator, amount, proof)`. */
export interface RewardClaim {
  epoch: bigint;
  operator: Address;
  amount: bigint;
  proof: Hex[];
}

/** A built rewards tree: what `postEpoch` needs (root, total) and every operator's claim. */
export interface RewardsTree {
  epoch: bigint;
  root: Hex;
  /** Sum of all amounts: the `total` to post. */
  total: bigint;
  /** Claims keyed by checksummed operator address. */
  claims: ReadonlyMap<Address, RewardClaim>;
}

/** An account's airdrop allocation, in GBT wei. */
export interface AirdropEntry {
  account: Address;
  amount: bigint;
}

/** Everything needed to submit one `Airdrop.claim(account, amount, proof)`. */
export interface AirdropClaim {
  account: Address;
  amount: bigint;
  proof: Hex[];
}

/** A built airdrop tree: the root to deploy with, the total it needs, every account's claim. */
export interface AirdropTree {
  root: Hex;
  total: bigint;
  /** Claims keyed by checksummed account address. */
  claims: ReadonlyMap<Address, AirdropClaim>;
}

/** Invalid input to a tree builder (bad address, non-bigint amount, duplicate, ...). */
export class MerkleInputError extends codedError('MERKLE_INPUT_INVALID') {
  override readonly name = 'MerkleInputError';
}

function checkEpoch(epoch: bigint): bigint {
  if (typeof epoch !== 'bigint' || epoch < 0n || epoch > MAX_UINT64) {
    throw new MerkleInputError(`epoch must be a bigint in [0, 2^64), got ${String(epoch)}`);
  }
  return epoch;
}

function checkAddress(what: string, value: string): Address {
  if (typeof value !== 'string' || !isAddress(value, { strict: false })) {
    throw new MerkleInputError(`${what} is not an address: ${String(value)}`);
  }
  const address = getAddress(value);
  if (address === zeroAddress) throw new MerkleInputError(`${what} is the zero address`);
  return address;
}

function checkAmount(what: string, amount: bigint): bigint {
  // typeof guards callers that bypass the types (e.g. values straight from JSON.parse).
  if (typeof amount !== 'bigint') {
    throw new MerkleInputError(`${what}: amount must be a bigint (wei), got ${typeof amount}`);
  }
  // A zero leaf would be rejected on chain anyway; an empty payout needs no leaf.
  if (amount <= 0n || amount > MAX_UINT256) {
    throw new MerkleInputError(`${what}: amount must be in (0, 2^256), got ${amount}`);
  }
  return amount;
}

/** Hex strings from the library are typed `string`; they are always 0x-prefixed hex. */
function asHex(value: string): Hex {
  if (!/^0x[0-9a-fA-F]*$/.test(value)) throw new Error(`merkle-tree returned non-hex ${value}`);
  return value as Hex;
}

/**
 * Builds the rewards tree for one epoch.
 * @param epoch the settlement epoch (uint64)
 * @param entries one entry per operator; amounts in GBT wei, all > 0
 * @returns root and total to pass to `postEpoch`, and each operator's claim with its proof
 * @throws MerkleInputError on an empty list, a duplicate operator (claims are tracked per
 *         (epoch, operator), so a second leaf could never be claimed), a bad address or amount
 */
export function buildRewardsTree(epoch: bigint, entries: readonly RewardEntry[]): RewardsTree {
  checkEpoch(epoch);
  if (entries.length === 0) throw new MerkleInputError('a rewards tree needs at least one entry');
  const values: [bigint, Address, bigint][] = [];
  const seen = new Set<Address>();
  let total = 0n;
  entries.forEach((entry, i) => {
    const operator = checkAddress(`entry ${i} operator`, entry.operator);
    const amount = checkAmount(`entry ${i} (${operator})`, entry.amount);
    if (seen.has(operator)) throw new MerkleInputError(`operator ${operator} appears twice in epoch ${epoch}`);
    seen.add(operator);
    total += amount;
    values.push([epoch, operator, amount]);
  });

  const tree = StandardMerkleTree.of(values, [...REWARDS_LEAF_ENCODING]);
  const claims = new Map<Address, RewardClaim>();
  for (const [index, [e, operator, amount]] of tree.entries()) {
    claims.set(operator, { epoch: e, operator, amount, proof: tree.getProof(index).map(asHex) });
  }
  return { epoch, root: asHex(tree.root), total, claims };
}

/**
 * Checks a rewards claim against a root off chain (same result as the contract's proof check).
 * Returns false, rather than throwing, for malformed input.
 */
export function verifyRewardClaim(root: Hex, claim: RewardClaim): boolean {
  try {
    const leaf: [bigint, Address, bigint] = [
      checkEpoch(claim.epoch),
      checkAddress('operator', claim.operator),
      checkAmount('claim', claim.amount),
    ];
    return StandardMerkleTree.verify(root, [...REWARDS_LEAF_ENCODING], leaf, claim.proof);
  } catch {
    return false;
  }
}

/**
 * The leaf hash of (epoch, operator, amount), computed with viem rather than the merkle-tree
 * library: keccak256(keccak256(abi.encode(epoch, operator, amount))). Equal to
 * `RewardsDistributor.leafHash` on chain; useful to index claims or cross-check the library.
 */
export function rewardsLeafHash(epoch: bigint, operator: Address, amount: bigint): Hex {
  const encoded = encodeAbiParameters(
    [{ type: 'uint64' }, { type: 'address' }, { type: 'uint256' }],
    [checkEpoch(epoch), checkAddress('operator', operator), checkAmount('leaf', amount)],
  );
  return keccak256(keccak256(encoded));
}

/**
 * Builds the early-adopter airdrop tree.
 * @param entries one entry per account; amounts in GBT wei, all > 0
 * @returns the root to deploy Airdrop with, the total it must hold, and each account's claim
 * @throws MerkleInputError on an empty list, a duplicate account, a bad address or amount
 */
export function buildAirdropTree(entries: readonly AirdropEntry[]): AirdropTree {
  if (entries.length === 0) throw new MerkleInputError('an airdrop tree needs at least one entry');
  const values: [Address, bigint][] = [];
  const seen = new Set<Address>();
  let total = 0n;
  entries.forEach((entry, i) => {
    const account = checkAddress(`entry ${i} account`, entry.account);
    const amount = checkAmount(`entry ${i} (${account})`, entry.amount);
    if (seen.has(account)) throw new MerkleInputError(`account ${account} appears twice in the airdrop`);
    seen.add(account);
    total += amount;
    values.push([account, amount]);
  });

  const tree = StandardMerkleTree.of(values, [...AIRDROP_LEAF_ENCODING]);
  const claims = new Map<Address, AirdropClaim>();
  for (const [index, [account, amount]] of tree.entries()) {
    claims.set(account, { account, amount, proof: tree.getProof(index).map(asHex) });
  }
  return { root: asHex(tree.root), total, claims };
}

/** Checks an airdrop claim against a root off chain. Returns false for malformed input. */
export function verifyAirdropClaim(root: Hex, claim: AirdropClaim): boolean {
  try {
    const leaf: [Address, bigint] = [checkAddress('account', claim.account), checkAmount('claim', claim.amount)];
    return StandardMerkleTree.verify(root, [...AIRDROP_LEAF_ENCODING], leaf, claim.proof);
  } catch {
    return false;
  }
}
