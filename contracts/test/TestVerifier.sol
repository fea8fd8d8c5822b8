// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IInferenceVerifier} from "../interfaces/IInferenceVerifier.sol";

/// @title TestVerifier
/// @notice TEST ONLY. A stand-in with the EZKL verifier's interface: accepts a proof exactly when
///         it equals keccak256(abi.encode(instances)), and reverts otherwise (as generated
///         verifiers do). Lets the registry's own checks (layouts, bindings, bounds) be tested
///         in milliseconds; the real generated verifiers are tested in test_attest_inference.py.
contract TestVerifier is IInferenceVerifier {
    error TestVerifier__Rejected();

    /// @inheritdoc IInferenceVerifier
    function verifyProof(bytes calldata proof, uint256[] calldata instances) external pure returns (bool) {
        if (proof.length != 32 || bytes32(proof) != keccak256(abi.encode(instances))) revert TestVerifier__Rejected();
        return true;
    }
}
