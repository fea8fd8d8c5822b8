// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title ILicenseGate
/// @notice What the provenance registry asks of the licence manager when a derivative registers.
interface ILicenseGate {
    /// @notice Checks that `holder` holds licence `licenseId` of `parent`, that it allows
    ///         derivatives and has not expired, and burns one unit of it.
    /// @dev Only the provenance registry may call.
    /// @param holder The derivative's creator.
    /// @param parent The parent asset.
    /// @param licenseId The ERC-1155 licence token id.
    /// @return shareBps The parent's derivative royalty share under the licence's terms.
    function consumeDerivativeLicense(address holder, bytes32 parent, uint256 licenseId)
        external
        returns (uint16 shareBps);

    /// @notice Told by the provenance registry when a batch claim takes over `asset`'s record:
    ///         terms attached before it sell and license nothing more.
    /// @dev Only the provenance registry may call.
    /// @param asset The asset whose record was replaced.
    function onAssetSuperseded(bytes32 asset) external;
}
