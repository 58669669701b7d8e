// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

/// @title RewardsDistributor
/// @notice Holds the GBT node-rewards pool (40% of supply) and pays node operators per epoch.
///         Off chain, settlement computes every operator's reward for an epoch, builds a Merkle
///         tree of (epoch, operator, amount) leaves and posts its root and total here once.
///         Anyone may then submit an operator's claim with its proof; tokens always go to the
///         operator named in the leaf, never to the caller, so relaying a claim cannot steal it.
/// @dev Leaves use OpenZeppelin's standard merkle-tree encoding,
///      keccak256(bytes.concat(keccak256(abi.encode(uint64 epoch, address operator, uint256 amount)))),
///      which is what OpenZeppelin's JS merkle-tree library hashes for
///      `StandardMerkleTree.of(values, ["uint64", "address", "uint256"])`. The double hash keeps a 64-byte internal node from
///      ever being accepted as a leaf (second-preimage attack).
///
///      Solvency invariant: `outstanding` (posted but not yet claimed) never exceeds the token
///      balance, because a post is refused when its total exceeds `balance - outstanding`, and a
///      claim lowers balance and `outstanding` by the same amount. Within an epoch, claims are
///      capped by the posted total, so even a bad root cannot drain more than that epoch's total.
contract RewardsDistributor is AccessControl, Pausable {
    using SafeERC20 for IERC20;

    /// @notice May post epoch roots (the settlement service's key).
    bytes32 public constant SETTLER_ROLE = keccak256("SETTLER_ROLE");
    /// @notice May pause and unpause posts and claims (incident response).
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    /// @notice The GBT token this pool pays out.
    IERC20 public immutable token;

    /// @dev `total` and `claimed` share one slot: both are bounded by the token's total supply
    ///      (1e27 < 2^128), and a claim then updates a single storage slot for the epoch.
    struct Epoch {
        bytes32 root;
        uint128 total;
        uint128 claimed;
    }

    mapping(uint64 epoch => Epoch) private _epochs;
    mapping(uint64 epoch => mapping(address operator => bool)) private _claimed;

    /// @notice Sum of every epoch total ever posted.
    uint256 public totalAllocated;
    /// @notice Posted but not yet claimed: the part of the balance already promised to operators.
    uint256 public outstanding;

    /// @notice A root was posted for `epoch`.
    event EpochPosted(uint64 indexed epoch, bytes32 root, uint256 total);
    /// @notice `operator` was paid `amount` for `epoch`.
    event Claimed(uint64 indexed epoch, address indexed operator, uint256 amount);

    /// @notice A constructor address argument was the zero address.
    error ZeroAddress();
    /// @notice `epoch` already has a root; settlement must never post an epoch twice.
    error EpochAlreadyPosted(uint64 epoch);
    /// @notice A post used the zero root, which is reserved to mean "not posted".
    error EmptyRoot();
    /// @notice A post had a zero total; an epoch without rewards needs no root.
    error ZeroTotal();
    /// @notice A post's total exceeds what the pool still has unallocated.
    error InsufficientUnallocated(uint256 requested, uint256 available);
    /// @notice A claim named an epoch that has no root.
    error EpochNotPosted(uint64 epoch);
    /// @notice The leaf (epoch, operator) was already claimed.
    error AlreadyClaimed(uint64 epoch, address operator);
    /// @notice A claim's amount was zero.
    error ZeroAmount();
    /// @notice The proof does not prove (epoch, operator, amount) against the epoch root.
    error InvalidProof();
    /// @notice A claim would take the epoch past its posted total.
    error EpochTotalExceeded(uint64 epoch, uint256 amount, uint256 remaining);

    /// @param token_ the GBT token (may not have code yet: the deployer predicts its address)
    /// @param admin gets DEFAULT_ADMIN_ROLE (grants and revokes roles) and PAUSER_ROLE
    /// @param settler gets SETTLER_ROLE
    constructor(IERC20 token_, address admin, address settler) {
        if (address(token_) == address(0) || admin == address(0) || settler == address(0)) revert ZeroAddress();
        token = token_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        _grantRole(SETTLER_ROLE, settler);
    }

    /// @notice Posts the Merkle root of `epoch`'s rewards, allocating `total` from the pool.
    /// @dev Once per epoch: a second post for the same epoch reverts, whatever its root.
    function postEpoch(uint64 epoch, bytes32 root, uint256 total) external onlyRole(SETTLER_ROLE) whenNotPaused {
        if (root == bytes32(0)) revert EmptyRoot();
        if (total == 0) revert ZeroTotal();
        Epoch storage e = _epochs[epoch];
        if (e.root != bytes32(0)) revert EpochAlreadyPosted(epoch);
        uint256 available = unallocated();
        if (total > available) revert InsufficientUnallocated(total, available);

        e.root = root;
        e.total = SafeCast.toUint128(total);
        totalAllocated += total;
        outstanding += total;
        emit EpochPosted(epoch, root, total);
    }

    /// @notice Pays `operator` its `amount` for `epoch`. Anyone may submit; tokens go to `operator`.
    function claim(uint64 epoch, address operator, uint256 amount, bytes32[] calldata proof) external whenNotPaused {
        Epoch storage e = _epochs[epoch];
        bytes32 root = e.root;
        if (root == bytes32(0)) revert EpochNotPosted(epoch);
        if (_claimed[epoch][operator]) revert AlreadyClaimed(epoch, operator);
        if (amount == 0) revert ZeroAmount();
        if (!MerkleProof.verifyCalldata(proof, root, leafHash(epoch, operator, amount))) revert InvalidProof();
        uint256 remaining = e.total - e.claimed;
        if (amount > remaining) revert EpochTotalExceeded(epoch, amount, remaining);

        // Effects before the transfer (checks-effects-interactions).
        _claimed[epoch][operator] = true;
        // Cannot overflow: amount <= remaining = total - claimed, and total fits in uint128.
        e.claimed += uint128(amount);
        outstanding -= amount;
        emit Claimed(epoch, operator, amount);
        token.safeTransfer(operator, amount);
    }

    /// @notice Stops posts and claims.
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @notice Resumes posts and claims.
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    /// @notice Pool balance not yet promised to any epoch: balance minus posted-but-unclaimed.
    function unallocated() public view returns (uint256) {
        uint256 balance = token.balanceOf(address(this));
        // By the solvency invariant balance >= outstanding; the guard only avoids a revert here.
        return balance > outstanding ? balance - outstanding : 0;
    }

    /// @notice Whether `operator`'s leaf for `epoch` has been claimed.
    function isClaimed(uint64 epoch, address operator) external view returns (bool) {
        return _claimed[epoch][operator];
    }

    /// @notice The root posted for `epoch`, or zero when none was posted.
    function epochRoot(uint64 epoch) external view returns (bytes32) {
        return _epochs[epoch].root;
    }

    /// @notice Root, posted total and amount claimed so far for `epoch`.
    function epochInfo(uint64 epoch) external view returns (bytes32 root, uint256 total, uint256 claimed) {
        Epoch storage e = _epochs[epoch];
        return (e.root, e.total, e.claimed);
    }

    /// @notice The leaf hash for (epoch, operator, amount), in OpenZeppelin's standard encoding.
    function leafHash(uint64 epoch, address operator, uint256 amount) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(epoch, operator, amount))));
    }
}
