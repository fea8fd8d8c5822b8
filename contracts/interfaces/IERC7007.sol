// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";

/// @title IERC7007
/// @notice ERC-7007 (Final): Verifiable AI-Generated Content Token, an ERC-721 extension.
/// @dev Interface id: `addAigcData.selector ^ verify.selector`.
interface IERC7007 is IERC165, IERC721 {
    /// @notice Emitted when AI-generated content data is added to token `tokenId`.
    event AigcData(uint256 indexed tokenId, bytes indexed prompt, bytes indexed aigcData, bytes proof);

    /// @notice Adds AIGC data to token `tokenId`, given `prompt`, `aigcData` and `proof`.
    /// @param tokenId The token.
    /// @param prompt The prompt the content was generated from.
    /// @param aigcData The generated content (or a digest of it).
    /// @param proof Proof that the content came from the model on that input.
    function addAigcData(uint256 tokenId, bytes calldata prompt, bytes calldata aigcData, bytes calldata proof)
        external;

    /// @notice Verifies `prompt`, `aigcData` and `proof`.
    /// @param prompt The prompt.
    /// @param aigcData The generated content (or a digest of it).
    /// @param proof The proof.
    /// @return success True when the proof checks.
    function verify(bytes calldata prompt, bytes calldata aigcData, bytes calldata proof)
        external
        view
        returns (bool success);
}
