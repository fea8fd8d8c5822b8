// SPDX-License-Identifier: MIT
pragma solidity ^0.8.17;

/// @notice The ERC-20 surface Permit2 moves tokens through (stands in for solmate's `ERC20`, whose
///         AGPL-3.0 source proofmint does not vendor; Permit2 only names the type and calls `transferFrom`).
interface ERC20 {
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

/// @notice `safeTransferFrom` as Permit2 uses it (stands in for solmate's `SafeTransferLib`): reverts unless
///         the call succeeded and returned nothing or `true`. Unlike solmate's, a token address with no code
///         reverts too (solmate's would report success for a transfer that moved nothing).
library SafeTransferLib {
    /// @notice Thrown when a token transfer fails, returns false, or the token has no code.
    error TransferFromFailed();

    function safeTransferFrom(ERC20 token, address from, address to, uint256 amount) internal {
        if (address(token).code.length == 0) revert TransferFromFailed();
        (bool ok, bytes memory data) = address(token).call(abi.encodeCall(ERC20.transferFrom, (from, to, amount)));
        if (!ok || (data.length != 0 && (data.length != 32 || abi.decode(data, (uint256)) != 1))) {
            revert TransferFromFailed();
        }
    }
}
