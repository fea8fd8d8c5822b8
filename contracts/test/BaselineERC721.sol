// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ERC721URIStorage} from "@openzeppelin/contracts/token/ERC721/extensions/ERC721URIStorage.sol";

/// @title BaselineERC721
/// @notice BENCHMARK BASELINE. The usual way to put generated assets on chain: an OpenZeppelin
///         ERC-721 with per-token URI storage and a provenance struct, minted one at a time.
contract BaselineERC721 is ERC721URIStorage {
    struct Provenance {
        address creator;
        uint64 modelId;
        bytes32 contentDigest;
        bytes32 paramsDigest;
        bytes32 inputCommitment;
    }

    uint256 public nextId = 1;
    mapping(uint256 tokenId => Provenance) public provenance;

    constructor() ERC721("Baseline", "BASE") {}

    function mint(
        address to,
        bytes32 contentDigest,
        uint64 modelId,
        bytes32 paramsDigest,
        bytes32 inputCommitment,
        string calldata uri
    ) external returns (uint256 tokenId) {
        tokenId = nextId++;
        provenance[tokenId] = Provenance(to, modelId, contentDigest, paramsDigest, inputCommitment);
        _mint(to, tokenId);
        _setTokenURI(tokenId, uri);
    }
}
