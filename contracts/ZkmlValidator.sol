// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";

import {IIdentityRegistry, IValidationRegistry} from "./interfaces/IERC8004.sol";
import {IProvenanceRegistry} from "./interfaces/IProvenanceRegistry.sol";
import {IZkmlValidator} from "./interfaces/IZkmlValidator.sol";

/// @title ZkmlValidator
/// @notice Answers ERC-8004 validation requests about generated assets from their on-chain
///         zkML attestations (see `IZkmlValidator`).
/// @dev No owner and no admin: the registries are fixed at construction and every answer is a
///      function of chain state. The response URI's base is fixed too (the operator's API).
contract ZkmlValidator is IZkmlValidator {
    /// @notice Most assets one request may cover (as many as one `attestInference` call).
    uint256 public constant MAX_ASSETS = 256;
    /// @notice The domain tag of an item leaf.
    bytes32 public constant ITEM_TAG = keccak256("proofmint.ZkmlValidator.item.v1");
    /// @notice The tag every response carries.
    string public constant TAG = "zkml";

    /// @notice The ERC-8004 Validation Registry this validator answers in.
    IValidationRegistry public immutable VALIDATION_REGISTRY;
    /// @notice Its identity registry (whose agents request validation).
    IIdentityRegistry public immutable IDENTITY_REGISTRY;
    /// @notice The provenance registry whose attestations are the evidence.
    IProvenanceRegistry public immutable PROVENANCE;

    /// @dev What was answered: the assets' root, the attesting model version, the asset count,
    ///      `response + 1` (0: not answered), and whether it was revoked.
    struct Answer {
        bytes32 root;
        uint64 modelId;
        uint32 count;
        uint8 responsePlusOne;
        bool revoked;
    }

    string private _responseBaseURI;
    mapping(bytes32 requestHash => Answer) private _answers;

    /// @param validationRegistry The ERC-8004 Validation Registry.
    /// @param provenance The provenance registry.
    /// @param responseBaseURI_ Base of every response URI (e.g. "https://api.example/v1/validations/").
    constructor(IValidationRegistry validationRegistry, IProvenanceRegistry provenance, string memory responseBaseURI_) {
        if (address(validationRegistry) == address(0) || address(provenance) == address(0)) {
            revert ZkmlValidator__BadConfig();
        }
        address identity = validationRegistry.getIdentityRegistry();
        if (identity == address(0)) revert ZkmlValidator__BadConfig();
        VALIDATION_REGISTRY = validationRegistry;
        IDENTITY_REGISTRY = IIdentityRegistry(identity);
        PROVENANCE = provenance;
        _responseBaseURI = responseBaseURI_;
    }

    /// @inheritdoc IZkmlValidator
    function respond(bytes32 requestHash, bytes32 salt, uint256 modelId, bytes32[] calldata assets)
        external
        returns (uint8 response)
    {
        // Checks: the request is ours, unanswered, and exactly this agent's salted root of these
        // assets of this model.
        (address validatorAddress, uint256 agentId,,,,) = VALIDATION_REGISTRY.getValidationStatus(requestHash);
        if (validatorAddress != address(this)) revert ZkmlValidator__NotOurRequest(requestHash, validatorAddress);
        if (_answers[requestHash].responsePlusOne != 0) revert ZkmlValidator__AlreadyAnswered(requestHash);
        bytes32 root = _rootOf(modelId, assets);
        bytes32 computed = _requestHashOf(agentId, salt, root);
        if (computed != requestHash) revert ZkmlValidator__RequestMismatch(requestHash, computed);
        response = _judge(agentId, modelId, assets);

        // Effects, then the one interaction (the registry, fixed at construction). modelId fits
        // 64 bits: _judge found attestations by it, and model ids are a counter.
        _answers[requestHash] = Answer(root, uint64(modelId), uint32(assets.length), response + 1, false);
        emit Answered(requestHash, agentId, modelId, root, response, assets);
        VALIDATION_REGISTRY.validationResponse(
            requestHash, response, _responseURI(requestHash), keccak256(abi.encode(modelId, assets)), TAG
        );
    }

    /// @inheritdoc IZkmlValidator
    function revoke(bytes32 requestHash, bytes32[] calldata assets) external {
        Answer storage answer = _answers[requestHash];
        if (answer.responsePlusOne == 0) revert ZkmlValidator__NotAnswered(requestHash);
        if (answer.revoked) revert ZkmlValidator__AlreadyRevoked(requestHash);
        uint256 modelId = answer.modelId;
        bytes32 root = _rootOf(modelId, assets);
        if (root != answer.root) revert ZkmlValidator__RequestMismatch(requestHash, root);
        // The first asset whose attestation is gone (assets is bounded by MAX_ASSETS, checked in
        // _rootOf); none: the answer stands.
        uint256 i = 0;
        while (i < assets.length) {
            (bool attested,,) = PROVENANCE.attestationOf(assets[i], modelId);
            if (!attested) break;
            ++i;
        }
        if (i == assets.length) revert ZkmlValidator__StillProven(requestHash);
        bytes32 withdrawn = assets[i];

        answer.revoked = true;
        answer.responsePlusOne = 1;
        emit Revoked(requestHash, withdrawn);
        VALIDATION_REGISTRY.validationResponse(
            requestHash, 0, _responseURI(requestHash), keccak256(abi.encode(modelId, assets)), TAG
        );
    }

    /// @inheritdoc IZkmlValidator
    function itemLeaf(bytes32 asset, uint256 modelId) public view returns (bytes32) {
        return keccak256(
            bytes.concat(bytes1(0x00), abi.encode(ITEM_TAG, block.chainid, address(this), address(PROVENANCE), asset, modelId))
        );
    }

    /// @inheritdoc IZkmlValidator
    function rootOf(uint256 modelId, bytes32[] calldata assets) external view returns (bytes32) {
        return _rootOf(modelId, assets);
    }

    /// @inheritdoc IZkmlValidator
    function requestHashOf(uint256 agentId, bytes32 salt, bytes32 root) external pure returns (bytes32) {
        return _requestHashOf(agentId, salt, root);
    }

    /// @inheritdoc IZkmlValidator
    function itemResponse(bytes32 requestHash, bytes32 asset, uint256 index, bytes32[] calldata proof)
        external
        view
        returns (uint8 response)
    {
        Answer memory answer = _answers[requestHash];
        if (answer.responsePlusOne == 0) revert ZkmlValidator__NotAnswered(requestHash);
        // processBatchProof reverts for an index past the count or a proof of the wrong length.
        if (PROVENANCE.processBatchProof(itemLeaf(asset, answer.modelId), index, answer.count, proof) != answer.root) {
            revert ZkmlValidator__NotCovered(requestHash, asset);
        }
        return answer.responsePlusOne - 1;
    }

    /// @inheritdoc IZkmlValidator
    function answerOf(bytes32 requestHash)
        external
        view
        returns (bool answered, uint8 response, uint256 count, uint256 modelId, bytes32 root, bool revoked)
    {
        Answer memory answer = _answers[requestHash];
        if (answer.responsePlusOne == 0) return (false, 0, 0, 0, bytes32(0), false);
        return (true, answer.responsePlusOne - 1, answer.count, answer.modelId, answer.root, answer.revoked);
    }

    /// @inheritdoc IZkmlValidator
    function responseBaseURI() external view returns (string memory) {
        return _responseBaseURI;
    }

    /// @dev The root over the assets' leaves (the provenance registry's tree); checks the count.
    function _rootOf(uint256 modelId, bytes32[] calldata assets) private view returns (bytes32) {
        uint256 count = assets.length;
        if (count == 0 || count > MAX_ASSETS) revert ZkmlValidator__BadAssetCount(count, MAX_ASSETS);
        bytes32[] memory leaves = new bytes32[](count);
        for (uint256 i = 0; i < count; ++i) {
            leaves[i] = itemLeaf(assets[i], modelId);
        }
        return PROVENANCE.rootOf(leaves);
    }

    /// @dev keccak256(0x02 ‖ abi.encode(agentId, salt, root)): the 0x02 prefix keeps it apart
    ///      from the tree's leaves (0x00) and nodes (0x01).
    function _requestHashOf(uint256 agentId, bytes32 salt, bytes32 root) private pure returns (bytes32) {
        return keccak256(bytes.concat(bytes1(0x02), abi.encode(agentId, salt, root)));
    }

    function _responseURI(bytes32 requestHash) private view returns (string memory) {
        return string.concat(_responseBaseURI, Strings.toHexString(uint256(requestHash), 32));
    }

    /// @dev The response the assets' attestations give: each must be the agent's work and
    ///      proven by `modelId`, all with the first asset's verdict. `assets` is bounded by
    ///      MAX_ASSETS (checked in _rootOf).
    function _judge(uint256 agentId, uint256 modelId, bytes32[] calldata assets) private view returns (uint8) {
        // An ERC-721: ownerOf reverts for an agent that does not exist.
        address owner = IERC721(address(IDENTITY_REGISTRY)).ownerOf(agentId);
        address wallet = IDENTITY_REGISTRY.getAgentWallet(agentId);
        IProvenanceRegistry.Verdict first;
        address vouched; // the last creator found to be the agent's: checked once per run
        for (uint256 i = 0; i < assets.length; ++i) {
            bytes32 asset = assets[i];
            address creator = PROVENANCE.creatorOf(asset);
            if (creator != vouched) {
                if (!_isAgents(creator, owner, wallet)) revert ZkmlValidator__NotAgentsWork(asset, creator, agentId);
                vouched = creator;
            }
            (bool attested,, IProvenanceRegistry.Verdict verdict) = PROVENANCE.attestationOf(asset, modelId);
            if (!attested) revert ZkmlValidator__NotProven(asset, modelId);
            if (i == 0) first = verdict;
            else if (verdict != first) revert ZkmlValidator__MixedVerdicts(asset, verdict, first);
        }
        if (first == IProvenanceRegistry.Verdict.Accept) return 100;
        if (first == IProvenanceRegistry.Verdict.Review) return 50;
        return 0;
    }

    /// @dev Whether an asset of `creator` is the work of the agent with this owner and wallet.
    function _isAgents(address creator, address owner, address wallet) private view returns (bool) {
        if (creator == owner || (wallet != address(0) && creator == wallet)) return true;
        if (PROVENANCE.isRegistrar(creator, owner)) return true;
        return wallet != address(0) && PROVENANCE.isRegistrar(creator, wallet);
    }
}
