// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {VestingWallet} from "@openzeppelin/contracts/finance/VestingWallet.sol";
import {VestingWalletCliff} from "@openzeppelin/contracts/finance/VestingWalletCliff.sol";

/// @title TeamVesting
/// @notice Holds the team and development allocation (20% of GBT). Linear vesting from `start`
///         over `duration` seconds, with nothing releasable before `start + cliffSeconds`.
///         OpenZeppelin's VestingWalletCliff is abstract only because it has no constructor of
///         its own for the base wallet; this contract just wires the two constructors together.
contract TeamVesting is VestingWalletCliff {
    /// @param beneficiary owner of the wallet, who receives released tokens
    /// @param startTimestamp unix time at which vesting starts
    /// @param durationSeconds total vesting duration (cliff included)
    /// @param cliffSeconds seconds after `startTimestamp` before anything vests; must be <= duration
    constructor(address beneficiary, uint64 startTimestamp, uint64 durationSeconds, uint64 cliffSeconds)
        VestingWallet(beneficiary, startTimestamp, durationSeconds)
        VestingWalletCliff(cliffSeconds)
    {}
}
