// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title Airdrop
/// @notice Holds the early-adopter allocation (10% of GBT). Each (account, amount) leaf of the
///         Merkle root fixed at deployment can be claimed once; anyone may submit a claim and the
///         tokens go to `account`. If a claim deadline is set, claims stop after it and the owner
///         may then sweep whatever is left to the community treasury (never anywhere else).
/// @dev Leaves use OpenZeppelin's standard merkle-tree encoding,
///      keccak256(bytes.concat(keccak256(abi.encode(address account, uint256 amount)))), i.e.
///      `StandardMerkleTree.of(values, ["address", "uint256"])`. Claims are tracked per account,
///      so the tree must hold at most one leaf per account (the off-chain builder enforces it).
contract Airdrop is Ownable {
    using SafeERC20 for IERC20;

    /// @notice The GBT token being distributed.
    IERC20 public immutable token;
    /// @notice Root of the (account, amount) tree.
    bytes32 public immutable merkleRoot;
    /// @notice Where unclaimed tokens go after the deadline.
    address public immutable treasury;
    /// @notice Last unix time at which claims are accepted; 0 means claims never close.
    uint64 public immutable claimDeadline;

    mapping(address account => bool) private _claimed;

    /// @notice `account` was paid `amount`.
    event Claimed(address indexed account, uint256 amount);
    /// @notice `amount` unclaimed tokens were sent to the treasury.
    event Swept(address indexed treasury, uint256 amount);

    /// @notice A constructor address argument was the zero address.
    error ZeroAddress();
    /// @notice The deadline given at deployment has already passed.
    error DeadlineInPast(uint64 deadline);
    /// @notice `account` has already claimed.
    error AlreadyClaimed(address account);
    /// @notice The proof does not prove (account, amount) against the root.
    error InvalidProof();
    /// @notice Claims closed at `deadline`.
    error ClaimWindowClosed(uint64 deadline);
    /// @notice Sweeping needs a deadline, and it must have passed (0 = no deadline, never sweepable).
    error ClaimWindowOpen(uint64 deadline);

    /// @param token_ the GBT token (may not have code yet: the deployer predicts its address)
    /// @param merkleRoot_ root of the (account, amount) tree
    /// @param treasury_ recipient of a sweep
    /// @param claimDeadline_ last unix time claims are accepted, or 0 for no deadline
    /// @param owner_ may sweep after the deadline
    constructor(IERC20 token_, bytes32 merkleRoot_, address treasury_, uint64 claimDeadline_, address owner_)
        Ownable(owner_)
    {
        if (address(token_) == address(0) || treasury_ == address(0)) revert ZeroAddress();
        if (claimDeadline_ != 0 && claimDeadline_ < block.timestamp) revert DeadlineInPast(claimDeadline_);
        token = token_;
        merkleRoot = merkleRoot_;
        treasury = treasury_;
        claimDeadline = claimDeadline_;
    }

    /// @notice Pays `account` its `amount`. Anyone may submit; tokens go to `account`.
    function claim(address account, uint256 amount, bytes32[] calldata proof) external {
        if (claimDeadline != 0 && block.timestamp > claimDeadline) revert ClaimWindowClosed(claimDeadline);
        if (_claimed[account]) revert AlreadyClaimed(account);
        if (!MerkleProof.verifyCalldata(proof, merkleRoot, leafHash(account, amount))) revert InvalidProof();

        _claimed[account] = true;
        emit Claimed(account, amount);
        token.safeTransfer(account, amount);
    }

    /// @notice After the deadline, sends every unclaimed token to the treasury.
    function sweep() external onlyOwner {
        if (claimDeadline == 0 || block.timestamp <= claimDeadline) revert ClaimWindowOpen(claimDeadline);
        uint256 amount = token.balanceOf(address(this));
        emit Swept(treasury, amount);
        token.safeTransfer(treasury, amount);
    }

    /// @notice Whether `account` has claimed.
    function isClaimed(address account) external view returns (bool) {
        return _claimed[account];
    }

    /// @notice The leaf hash for (account, amount), in OpenZeppelin's standard encoding.
    function leafHash(address account, uint256 amount) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(account, amount))));
    }
}
