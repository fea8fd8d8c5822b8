// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IInferenceVerifier
/// @notice The interface of EZKL-generated Halo2 verifiers (`Halo2Verifier.verifyProof`).
/// @dev Generated verifiers declare `verifyProof` without `view`, but they only read; proofmint
///      always calls them with STATICCALL through this interface.
interface IInferenceVerifier {
    /// @notice Checks a proof against its public instances (field elements, each < the modulus).
    /// @param proof The serialized proof.
    /// @param instances The public instances.
    /// @return True when the proof is valid; generated verifiers revert instead of returning false.
    function verifyProof(bytes calldata proof, uint256[] calldata instances) external view returns (bool);
}
