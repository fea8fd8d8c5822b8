// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {LibZip} from "solady/src/utils/LibZip.sol";

/// @title FastLZReference
/// @notice TEST ONLY. Exposes solady's `LibZip.flzCompress` (FastLZ level 1, the compressor that the
///         OP-stack `GasPriceOracle` calls to price a transaction's L1 data since Fjord) so that the
///         Python port in `bench/l1_data.py` can be compared with it byte for byte.
/// @dev Note: pure and stateless. The library allocates a 32 KiB hash table in memory on every call,
///      and compression costs gas roughly in proportion to the input's length: call it with
///      `eth_call`, never in a transaction.
contract FastLZReference {
    /// @notice Compresses `data` with FastLZ level 1 exactly as `LibZip.flzCompress` does.
    /// @param data The bytes to compress (any length, empty included).
    /// @return The compressed bytes.
    function flzCompress(bytes calldata data) external pure returns (bytes memory) {
        return LibZip.flzCompress(data);
    }

    /// @notice Returns the length of `LibZip.flzCompress(data)`: the `fastlzSize` that the Fjord
    ///         L1 fee formula takes.
    /// @param data The bytes to compress.
    /// @return The compressed length in bytes.
    function flzCompressedLength(bytes calldata data) external pure returns (uint256) {
        return LibZip.flzCompress(data).length;
    }
}
