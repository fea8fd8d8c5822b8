// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IProvenanceRegistry} from "./IProvenanceRegistry.sol";

/// @title IZkmlValidator
/// @notice Proofmint as an ERC-8004 zkML validator: it answers `validationRequest`s about
///         generated assets from what `ProvenanceRegistry.attestInference` has proven (an EZKL
///         proof of the curation head, checked on chain by the model version's verifier), never
///         from anyone's word. Response 100: every covered asset was proven `Accept`; 50: proven
///         `Review` (the human-review band); 0: proven `Reject`, or the evidence was withdrawn
///         since (`revoke`). Tag "zkml".
/// @dev One request covers a batch. The assets' leaves, `itemLeaf(asset, modelId)` (naming this
///      validator, the chain, the provenance registry, the asset and the attesting model
///      version), make a Merkle tree (the provenance registry's: 0x00-prefixed leaves,
///      0x01-prefixed nodes, the odd node carried up) whose root is sealed with the requesting
///      agent and a salt: `requestHash = keccak256(0x02 ‖ abi.encode(agentId, salt, root))`.
///      - The agent in the hash: a request made under another agent (a squatter who copied the
///        hash) never matches, so an answer can only land on the agent the hash names.
///      - The salt: request hashes are first come in the Validation Registry, so a hash anyone
///        could compute from public data could be requested first by a stranger and block the
///        agent's own. The agent picks a salt nobody can guess (proofmint's prover derives it
///        from its key); a stranger must then copy a request from the mempool to front-run it,
///        and the agent retries with another salt.
///      One request and one response cover the batch; each asset is then checkable on its own
///      with `itemResponse` and its Merkle proof. `respond` and `revoke` may be called by anyone:
///      what they post follows from the chain alone, and the request's assets are fixed by its
///      hash (`Answered` lists them).
///      Limits: every asset of a request must share one attesting model version and one
///      verdict (the requester groups them); an asset counts as the agent's work only when its
///      creator is the agent's owner or wallet, or has approved one of them as its registrar.
///      An answer is given once, and withdrawn (response 0) only when the chain withdraws its
///      evidence: an asset's record taken over by an earlier batch commitment (its attestation
///      belonged to the record taken over).
interface IZkmlValidator {
    /// @notice `requestHash` was answered with `response` for the assets of `root`, attested by `modelId`.
    event Answered(
        bytes32 indexed requestHash,
        uint256 indexed agentId,
        uint256 indexed modelId,
        bytes32 root,
        uint8 response,
        bytes32[] assets
    );
    /// @notice The answer to `requestHash` was withdrawn: `asset` is no longer attested.
    event Revoked(bytes32 indexed requestHash, bytes32 indexed asset);

    /// @notice A configuration address is zero.
    error ZkmlValidator__BadConfig();
    /// @notice The request names another validator.
    error ZkmlValidator__NotOurRequest(bytes32 requestHash, address validatorAddress);
    /// @notice The request was answered already.
    error ZkmlValidator__AlreadyAnswered(bytes32 requestHash);
    /// @notice No asset, or more than `MAX_ASSETS`.
    error ZkmlValidator__BadAssetCount(uint256 count, uint256 max);
    /// @notice The request's agent, the salt, the assets and the model version do not hash to the request.
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
    /// @notice Every asset of the answer is still attested: nothing to revoke.
    error ZkmlValidator__StillProven(bytes32 requestHash);
    /// @notice The answer was revoked already.
    error ZkmlValidator__AlreadyRevoked(bytes32 requestHash);

    /// @notice Answers a request made to this validator in the ERC-8004 Validation Registry:
    ///         checks that the request's agent, `salt`, `modelId` and `assets` (in the order the
    ///         requester built its tree) hash to `requestHash`, that each asset is that agent's
    ///         work and proven by `modelId` with one verdict, then posts
    ///         `validationResponse(requestHash, 100 | 50 | 0, responseBaseURI + requestHash,
    ///         keccak256(abi.encode(modelId, assets)), "zkml")`.
    /// @dev Anyone may call it. Gas: per asset, one leaf hash, two views of the provenance
    ///      registry (creator, attestation), the registrar check when the creator changes, and
    ///      the asset in the `Answered` event.
    /// @param requestHash The request.
    /// @param salt The salt its agent sealed it with.
    /// @param modelId The curation-head model version whose proofs attested the assets.
    /// @param assets The assets (content digests), in leaf order.
    /// @return response The response posted.
    function respond(bytes32 requestHash, bytes32 salt, uint256 modelId, bytes32[] calldata assets)
        external
        returns (uint8 response);

    /// @notice Withdraws an answer whose evidence the chain withdrew: when one of its assets is
    ///         no longer attested by the answer's model version (its record was taken over by an
    ///         earlier batch commitment), posts response 0 for the request and marks it revoked.
    /// @dev Anyone may call it; it reverts while every asset is still attested.
    /// @param requestHash The answered request.
    /// @param assets Its assets, in leaf order (as `Answered` lists them).
    function revoke(bytes32 requestHash, bytes32[] calldata assets) external;

    /// @notice The Merkle leaf of one asset attested by `modelId`:
    ///         keccak256(0x00 ‖ abi.encode(ITEM_TAG, chainid, this validator, provenance registry,
    ///         asset, modelId)).
    /// @param asset The content digest.
    /// @param modelId The attesting model version.
    /// @return The leaf.
    function itemLeaf(bytes32 asset, uint256 modelId) external view returns (bytes32);

    /// @notice The root over the assets' leaves, in order.
    /// @param modelId The attesting model version.
    /// @param assets The assets (1 .. MAX_ASSETS).
    /// @return The root.
    function rootOf(uint256 modelId, bytes32[] calldata assets) external view returns (bytes32);

    /// @notice The request hash an agent seals a root with: keccak256(0x02 ‖ abi.encode(agentId, salt, root)).
    /// @param agentId The requesting agent.
    /// @param salt Its salt.
    /// @param root The assets' root (`rootOf`).
    /// @return The request hash.
    function requestHashOf(uint256 agentId, bytes32 salt, bytes32 root) external pure returns (bytes32);

    /// @notice What this validator answered for one asset of an answered batch, checked by its
    ///         Merkle proof (0 once the answer is revoked).
    /// @param requestHash The batch's request.
    /// @param asset The asset.
    /// @param index The asset's leaf index in the batch.
    /// @param proof Siblings from the leaf up (`IProvenanceRegistry.processBatchProof`'s).
    /// @return response The batch's response, which holds for this asset.
    function itemResponse(bytes32 requestHash, bytes32 asset, uint256 index, bytes32[] calldata proof)
        external
        view
        returns (uint8 response);

    /// @notice Whether and how a request was answered here.
    /// @param requestHash The request.
    /// @return answered True once answered.
    /// @return response The response (0 once revoked).
    /// @return count How many assets it covers.
    /// @return modelId The attesting model version.
    /// @return root The assets' root.
    /// @return revoked Whether the answer was withdrawn.
    function answerOf(bytes32 requestHash)
        external
        view
        returns (bool answered, uint8 response, uint256 count, uint256 modelId, bytes32 root, bool revoked);

    /// @notice Where responses point: `responseBaseURI` followed by the request hash (0x hex)
    ///         is the `proofmint verify` record of the batch (the API's /v1/validations/).
    /// @return The base URI.
    function responseBaseURI() external view returns (string memory);
}
