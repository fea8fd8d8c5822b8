// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IModelRegistry} from "./interfaces/IModelRegistry.sol";

/// @title ModelRegistry
/// @notice Append-only registry of generative model versions (see {IModelRegistry}).
/// @dev Note:
///      - Permissionless: anyone may register a model and becomes its developer. Nothing here
///        checks that the weights digest names real weights, or that the registrant trained
///        them; auditors check that off chain. So a digest is indexed per developer: a squatter
///        who registers a public model's digest first holds only its own version.
///      - The registry has no admin and no upgrade path: no function can change another
///        developer's version.
///      - Shares are read by the royalty splitter; their sum is capped by `MAX_MODEL_SHARE_BPS`
///        so a model can never claim the whole revenue of the assets made with it.
contract ModelRegistry is IModelRegistry {
    /// @notice Cap on developerBps + dataBps of one model version (50%).
    uint16 public constant MAX_MODEL_SHARE_BPS = 5_000;
    /// @notice Longest accepted metadata URI, in bytes.
    uint256 public constant MAX_URI_LENGTH = 256;
    /// @dev Band edges lie strictly between -2^29 and 2^29: the scores a provenance attestation
    ///      record holds (`ProvenanceRegistry`'s `_SCORE_LIMIT`, 30-bit two's complement).
    int32 private constant _BAND_LIMIT = 1 << 29;

    uint256 private _count;
    mapping(uint256 modelId => ModelVersion) private _models;
    mapping(address developer => mapping(bytes32 weightsDigest => uint256 modelId)) private _idOfWeights;
    mapping(uint256 modelId => address) private _pendingDeveloper;
    mapping(uint256 modelId => uint256 successor) private _successor;

    /// @inheritdoc IModelRegistry
    function registerModel(ModelInput calldata input) external returns (uint256 modelId) {
        if (input.weightsDigest == bytes32(0)) revert ModelRegistry__ZeroWeightsDigest();
        uint256 existing = _idOfWeights[msg.sender][input.weightsDigest];
        if (existing != 0) revert ModelRegistry__WeightsAlreadyRegistered(input.weightsDigest, existing);
        uint256 total = uint256(input.developerBps) + uint256(input.dataBps);
        if (total > MAX_MODEL_SHARE_BPS) revert ModelRegistry__SharesTooHigh(total, MAX_MODEL_SHARE_BPS);
        if ((input.dataRoot == bytes32(0)) != (input.dataBps == 0)) {
            revert ModelRegistry__DataRootMismatch(input.dataRoot, input.dataBps);
        }
        uint256 uriLength = bytes(input.metadataURI).length;
        if (uriLength == 0 || uriLength > MAX_URI_LENGTH) {
            revert ModelRegistry__BadMetadataURI(uriLength, MAX_URI_LENGTH);
        }
        if (input.predecessor != 0) {
            _requireDeveloper(input.predecessor);
            uint256 successor = _successor[input.predecessor];
            if (successor != 0) revert ModelRegistry__AlreadySucceeded(input.predecessor, successor);
        }

        modelId = ++_count;
        _models[modelId] = ModelVersion({
            developer: msg.sender,
            weightsDigest: input.weightsDigest,
            paramsCommitment: input.paramsCommitment,
            dataRoot: input.dataRoot,
            verifier: address(0),
            acceptAt: 0,
            reviewAt: 0,
            vkDigest: bytes32(0),
            verifierCodeHash: bytes32(0),
            predecessor: input.predecessor,
            developerBps: input.developerBps,
            dataBps: input.dataBps,
            registeredAt: uint64(block.timestamp),
            retiredAt: 0,
            metadataURI: input.metadataURI
        });
        _idOfWeights[msg.sender][input.weightsDigest] = modelId;
        if (input.predecessor != 0) _successor[input.predecessor] = modelId;
        emit ModelRegistered(
            modelId,
            msg.sender,
            input.weightsDigest,
            input.predecessor,
            input.developerBps,
            input.dataBps,
            input.dataRoot,
            input.paramsCommitment,
            input.metadataURI
        );
    }

    /// @inheritdoc IModelRegistry
    function bindVerifier(uint256 modelId, address verifier, bytes32 vkDigest, int32 acceptAt, int32 reviewAt)
        external
    {
        ModelVersion storage model = _requireDeveloper(modelId);
        if (model.retiredAt != 0) revert ModelRegistry__ModelRetired(modelId);
        if (model.verifier != address(0)) revert ModelRegistry__VerifierAlreadySet(modelId, model.verifier);
        if (verifier.code.length == 0 || vkDigest == bytes32(0)) revert ModelRegistry__BadVerifier(verifier, vkDigest);
        if (reviewAt > acceptAt || acceptAt >= _BAND_LIMIT || reviewAt <= -_BAND_LIMIT) {
            revert ModelRegistry__BadBands(acceptAt, reviewAt);
        }
        bytes32 codeHash = verifier.codehash;
        model.verifier = verifier;
        model.acceptAt = acceptAt;
        model.reviewAt = reviewAt;
        model.vkDigest = vkDigest;
        model.verifierCodeHash = codeHash;
        emit VerifierBound(modelId, verifier, vkDigest, codeHash, acceptAt, reviewAt);
    }

    /// @inheritdoc IModelRegistry
    function retire(uint256 modelId) external {
        ModelVersion storage model = _requireDeveloper(modelId);
        if (model.retiredAt != 0) revert ModelRegistry__ModelRetired(modelId);
        model.retiredAt = uint64(block.timestamp);
        emit ModelRetired(modelId);
    }

    /// @inheritdoc IModelRegistry
    function transferDeveloper(uint256 modelId, address newDeveloper) external {
        _requireDeveloper(modelId);
        if (newDeveloper == address(0)) revert ModelRegistry__ZeroDeveloper();
        _pendingDeveloper[modelId] = newDeveloper;
        emit DeveloperTransferStarted(modelId, msg.sender, newDeveloper);
    }

    /// @inheritdoc IModelRegistry
    function acceptDeveloper(uint256 modelId) external {
        ModelVersion storage model = _requireExists(modelId);
        if (_pendingDeveloper[modelId] != msg.sender) revert ModelRegistry__NotPendingDeveloper(modelId, msg.sender);
        address previous = model.developer;
        bytes32 weights = model.weightsDigest;
        uint256 existing = _idOfWeights[msg.sender][weights];
        if (existing != 0) revert ModelRegistry__WeightsAlreadyRegistered(weights, existing);
        delete _pendingDeveloper[modelId];
        delete _idOfWeights[previous][weights];
        _idOfWeights[msg.sender][weights] = modelId;
        model.developer = msg.sender;
        emit DeveloperTransferred(modelId, previous, msg.sender);
    }

    /// @inheritdoc IModelRegistry
    function getModel(uint256 modelId) external view returns (ModelVersion memory) {
        return _requireExists(modelId);
    }

    /// @inheritdoc IModelRegistry
    function isActive(uint256 modelId) external view returns (bool) {
        return modelId != 0 && modelId <= _count && _models[modelId].retiredAt == 0;
    }

    /// @inheritdoc IModelRegistry
    function royaltyOf(uint256 modelId)
        external
        view
        returns (address developer, uint16 developerBps, uint16 dataBps, bytes32 dataRoot)
    {
        ModelVersion storage model = _requireExists(modelId);
        return (model.developer, model.developerBps, model.dataBps, model.dataRoot);
    }

    /// @inheritdoc IModelRegistry
    function retiredAt(uint256 modelId) external view returns (uint64) {
        return _requireExists(modelId).retiredAt;
    }

    /// @inheritdoc IModelRegistry
    function verifierOf(uint256 modelId) external view returns (address verifier, bytes32 vkDigest, bytes32 codeHash) {
        ModelVersion storage model = _requireExists(modelId);
        return (model.verifier, model.vkDigest, model.verifierCodeHash);
    }

    /// @inheritdoc IModelRegistry
    function bandsOf(uint256 modelId) external view returns (int32 acceptAt, int32 reviewAt) {
        ModelVersion storage model = _requireExists(modelId);
        return (model.acceptAt, model.reviewAt);
    }

    /// @inheritdoc IModelRegistry
    function attestationTermsOf(uint256 modelId)
        external
        view
        returns (address verifier, bytes32 codeHash, uint64 retiredAt, int32 acceptAt, int32 reviewAt)
    {
        ModelVersion storage model = _requireExists(modelId);
        return (model.verifier, model.verifierCodeHash, model.retiredAt, model.acceptAt, model.reviewAt);
    }

    /// @inheritdoc IModelRegistry
    function modelIdOf(address developer, bytes32 weightsDigest) external view returns (uint256) {
        return _idOfWeights[developer][weightsDigest];
    }

    /// @inheritdoc IModelRegistry
    function pendingDeveloper(uint256 modelId) external view returns (address) {
        return _pendingDeveloper[modelId];
    }

    /// @inheritdoc IModelRegistry
    function successorOf(uint256 modelId) external view returns (uint256) {
        return _successor[modelId];
    }

    /// @inheritdoc IModelRegistry
    function modelCount() external view returns (uint256) {
        return _count;
    }

    function _requireExists(uint256 modelId) private view returns (ModelVersion storage model) {
        if (modelId == 0 || modelId > _count) revert ModelRegistry__UnknownModel(modelId);
        return _models[modelId];
    }

    function _requireDeveloper(uint256 modelId) private view returns (ModelVersion storage model) {
        model = _requireExists(modelId);
        if (model.developer != msg.sender) revert ModelRegistry__NotDeveloper(modelId, msg.sender);
    }
}
