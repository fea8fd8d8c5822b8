// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IProvenanceRegistry} from "./IProvenanceRegistry.sol";

/// @title IZkmlValidator
/// @notice Proofmint as an ERC-8004 zkML validator: it answers `validationRequest`s about
///         generated assets from what `ProvenanceRegistry.attestInference` has proven (an EZKL
///         proof of the curation head, checked on chain by the model version's verifier), never
///         from anyone's word. Response 100: every covered asset was proven `Accept`; 50: proven
///         `Review` (the human-review band); 0: proven `Reject`. Tag "zkml".
/// @dev One request covers a batch. Its `requestHash` is the root of a Merkle tree (the
///      provenance registry's tree: 0x00-prefixed leaves, 0x01-prefixed nodes, the odd node
///      carried up) over one leaf per asset, `itemLeaf(asset, modelId)`, which names this
///      validator, the chain, the provenance registry, the asset and the attesting model version.
///      One request and one response cover the batch; each asset is then checkable on its own
///      with `itemResponse` and its Merkle proof. `respond` may be called by anyone: what it
///      answers follows from the chain alone, and the request's assets are fixed by its hash.
///      Limits: every asset of a request must share one attesting model version and one
///      verdict (the requester groups them); an asset counts as the agent's work only when its
///      creator is the agent's owner or wallet, or has approved one of them as its registrar.
///      A request is answered once: attestations are final, so the answer is.
interface IZkmlValidator {
    /// @notice `requestHash` was answered with `response` for `count` assets of `modelId`.
    event Answered(bytes32 indexed requestHash, uint256 indexed agentId, uint256 indexed modelId, uint256 count, uint8 response);

    /// @notice A configuration address is zero.
    error ZkmlValidator__BadConfig();
    /// @notice The request names another validator.
    error ZkmlValidator__NotOurRequest(bytes32 requestHash, address validatorAddress);
    /// @notice The request was answered already.
    error ZkmlValidator__AlreadyAnswered(bytes32 requestHash);
    /// @notice No asset, or more than `MAX_ASSETS`.
    error ZkmlValidator__BadAssetCount(uint256 count, uint256 max);
    /// @notice The assets and model version do not hash to the request.
    error ZkmlValidator__RequestMismatch(bytes32 requestHash, bytes32 computed);
    /// @notice The asset's creator is neither the agent's owner or wallet nor has it approved them.
    error ZkmlValidator__NotAgentsWork(bytes32 asset, address creator, uint256 agentId);
    /// @notice The asset has no attestation by the model version (yet).
    error ZkmlValidator__NotProven(bytes32 asset, uint256 modelId);
    /// @notice The asset's proven verdict differs from the first asset's.
    error ZkmlValidator__MixedVerdicts(bytes32 asset, IProvenanceRegistry.Verdict verdict, IProvenanceRegistry.Verdict first);
    /// @notice This validator has not answered the request.
    error ZkmlValidator__NotAnswered(bytes32 requestHash);
    /// @notice The Merkle proof does not place the asset under the request.
    error ZkmlValidator__NotCovered(bytes32 requestHash, bytes32 asset);

    /// @notice Answers a request made to this validator in the ERC-8004 Validation Registry:
    ///         checks that `assets` (in the order the requester built its tree) and `modelId` hash
    ///         to `requestHash`, that each asset is the requesting agent's work and proven by
    ///         `modelId` with one verdict, then posts `validationResponse(requestHash, 100 | 50 |
    ///         0, responseBaseURI + requestHash, keccak256(abi.encode(modelId, assets)), "zkml")`.
    /// @dev Anyone may call it. Gas: per asset, one leaf hash, two views of the provenance
    ///      registry (creator, attestation) and the registrar check when the creator changes.
    /// @param requestHash The request (the Merkle root of the assets' leaves).
    /// @param modelId The curation-head model version whose proofs attested the assets.
    /// @param assets The assets (content digests), in leaf order.
    /// @return response The response posted.
    function respond(bytes32 requestHash, uint256 modelId, bytes32[] calldata assets) external returns (uint8 response);

    /// @notice The Merkle leaf of one asset attested by `modelId`:
    ///         keccak256(0x00 ‖ abi.encode(ITEM_TAG, chainid, this validator, provenance registry,
    ///         asset, modelId)).
    /// @param asset The content digest.
    /// @param modelId The attesting model version.
    /// @return The leaf.
    function itemLeaf(bytes32 asset, uint256 modelId) external view returns (bytes32);

    /// @notice The request hash of a batch: the root over the assets' leaves, in order.
    /// @param modelId The attesting model version.
    /// @param assets The assets (1 .. MAX_ASSETS).
    /// @return The request hash.
    function requestHashOf(uint256 modelId, bytes32[] calldata assets) external view returns (bytes32);

    /// @notice What this validator answered for one asset of an answered batch, checked by its
    ///         Merkle proof.
    /// @param requestHash The batch's request.
    /// @param asset The asset.
    /// @param modelId The attesting model version.
    /// @param index The asset's leaf index in the batch.
    /// @param proof Siblings from the leaf up (`IProvenanceRegistry.processBatchProof`'s).
    /// @return response The batch's response, which holds for this asset.
    function itemResponse(bytes32 requestHash, bytes32 asset, uint256 modelId, uint256 index, bytes32[] calldata proof)
        external
        view
        returns (uint8 response);

    /// @notice Whether and how a request was answered here.
    /// @param requestHash The request.
    /// @return answered True once answered.
    /// @return response The response.
    /// @return count How many assets it covers.
    function answerOf(bytes32 requestHash) external view returns (bool answered, uint8 response, uint256 count);

    /// @notice Where responses point: `responseBaseURI` followed by the request hash (0x hex)
    ///         is the `proofmint verify` record of the batch (the API's /v1/validations/).
    /// @return The base URI.
    function responseBaseURI() external view returns (string memory);
}
