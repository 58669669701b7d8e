// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title GitBlock Token (GBT)
/// @notice Fixed-supply ERC-20 paid to GitBlock GPU-node operators. The whole supply is minted
///         once, in the constructor, to the four allocations; there is no mint function, so the
///         supply can never grow after deployment.
contract GBT is ERC20, ERC20Permit {
    /// @notice 1,000,000,000 GBT with 18 decimals.
    uint256 public constant TOTAL_SUPPLY = 1_000_000_000 * 10 ** 18;

    // The four allocations are whole-number percentages of a supply that is a multiple of 100,
    // so each division is exact and the four parts sum to TOTAL_SUPPLY with no rounding dust.
    /// @notice 40%: node rewards pool, held by the RewardsDistributor.
    uint256 public constant NODE_REWARDS_ALLOCATION = (TOTAL_SUPPLY * 40) / 100;
    /// @notice 30%: community treasury.
    uint256 public constant TREASURY_ALLOCATION = (TOTAL_SUPPLY * 30) / 100;
    /// @notice 20%: team and development, held by a vesting wallet.
    uint256 public constant TEAM_ALLOCATION = (TOTAL_SUPPLY * 20) / 100;
    /// @notice 10%: early-adopter airdrop, held by the Airdrop contract.
    uint256 public constant AIRDROP_ALLOCATION = (TOTAL_SUPPLY * 10) / 100;

    /// @notice An allocation recipient was the zero address.
    error ZeroAllocationAddress();
    /// @notice Two allocations were given the same recipient (would silently merge allocations).
    error DuplicateAllocationAddress(address recipient);

    /// @param rewardsDistributor receives the node rewards pool (40%)
    /// @param treasury receives the community treasury (30%)
    /// @param teamVesting receives the team and development allocation (20%)
    /// @param airdrop receives the early-adopter airdrop (10%)
    constructor(address rewardsDistributor, address treasury, address teamVesting, address airdrop)
        ERC20("GitBlock Token", "GBT")
        ERC20Permit("GitBlock Token")
    {
        address[4] memory recipients = [rewardsDistributor, treasury, teamVesting, airdrop];
        for (uint256 i = 0; i < 4; ++i) {
            if (recipients[i] == address(0)) revert ZeroAllocationAddress();
            for (uint256 j = 0; j < i; ++j) {
                if (recipients[i] == recipients[j]) revert DuplicateAllocationAddress(recipients[i]);
            }
        }
        _mint(rewardsDistributor, NODE_REWARDS_ALLOCATION);
        _mint(treasury, TREASURY_ALLOCATION);
        _mint(teamVesting, TEAM_ALLOCATION);
        _mint(airdrop, AIRDROP_ALLOCATION);
    }
}
