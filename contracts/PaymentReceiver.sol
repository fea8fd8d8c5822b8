// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @title PaymentReceiver
/// @notice One asset's address for push payments (an x402 `exact` payment's `payTo`: the `to`
///         of an EIP-3009 `transferWithAuthorization`), in any token. The licence manager deploys
///         it with CREATE2 on the first sweep, salted with the asset, so its address is known, and
///         can be paid, before it exists; only that manager moves what it holds, and only into
///         the asset's revenue (`LicenseManager.sweepPayments`), token by token.
/// @dev Holds nothing of its own: whoever pays it pays the asset. Its address binds a payment to
///      the asset, so it does not matter who submits the payer's authorization.
contract PaymentReceiver {
    using SafeERC20 for IERC20;

    /// @notice The licence manager that deployed this receiver and alone sweeps it.
    address public immutable MANAGER;

    /// @notice A caller other than the manager tried to sweep.
    error PaymentReceiver__NotManager(address caller);

    constructor() {
        MANAGER = msg.sender;
    }

    /// @notice Sends everything this receiver holds in `token` to `to` (the manager's vault).
    /// @param token The token to sweep.
    /// @param to Where the tokens go.
    /// @return amount How much it sent (by its own balance before the transfer).
    function sweep(IERC20 token, address to) external returns (uint256 amount) {
        if (msg.sender != MANAGER) revert PaymentReceiver__NotManager(msg.sender);
        amount = token.balanceOf(address(this));
        if (amount != 0) token.safeTransfer(to, amount);
    }
}
