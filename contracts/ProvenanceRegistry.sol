// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {IERC2981} from "@openzeppelin/contracts/interfaces/IERC2981.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IERC7007} from "./interfaces/IERC7007.sol";
import {IInferenceVerifier} from "./interfaces/IInferenceVerifier.sol";
import {ILicenseGate} from "./interfaces/ILicenseGate.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {IProvenanceRegistry} from "./interfaces/IProvenanceRegistry.sol";

/// @title ProvenanceRegistry
/// @notice Provenance of generated assets as ERC-721 tokens (id = sha256 of the bytes), with
///         ERC-2981 royalties and ERC-7007 AIGC data (see {IProvenanceRegistry}).
/// @dev Note:
///      - First committed, first registered: the registry records what the registrant asserts;
///        it cannot know who really made the bytes. The creator (or a registrar it approved
///        before) signs the transaction or the batch commitment; auditors check the manifest and
///        proofs off chain. A batch commitment reserves its members: a claim takes over a record
///        registered after the commitment (see `claimFromBatch`). Direct registration reserves
///        nothing before its own transaction.
///      - Lineage is fixed at registration. There is no function that adds parents later, and a
///        parent must already be registered, so the lineage graph is acyclic by construction. A
///        claim that takes a record over may name only parents registered before its batch was
///        committed, and the record taken over (and every descendant of the digest) was
///        registered after it, so no parent can descend from the asset. Recorded depths of the
///        descendants of a taken-over record are not updated.
///      - Tokens are minted with `_mint`, not `_safeMint`: the creator asked for the registration,
///        and a receiver hook would let a contract creator run code mid-registration.
///      - The creator share and the ERC-2981 receiver follow the recorded creator, not the current
///        token owner. ERC-2981 pays the creator alone: marketplaces send royalties as plain
///        transfers that do not name the token, so they cannot be split per asset on chain;
///        a creator who shares secondary-sale income passes it on with `RoyaltySplitter.pay`.
///      - A proof binds to assets by their proven digests (`provenDigestOf`: the top 253 bits
///        of keccak256 of the content digest, so every bit of the digest counts), which the
///        circuit passes through to public instances, and by their input commitments; `verify` and
///        `attestInference` check both against the record's input binding, so a proof made for
///        asset A never attests or verifies asset B. What the circuit
///        reads (the image embedding) is committed, not derived from the bytes on chain: a
///        creator could prove a score of another image's embedding under its own digest. That
///        the commitment is the embedding of the asset's bytes is checked off chain, by
///        recomputing it from the content (`proofmint verify`).
///      - A verdict is what the attesting model version's bands, bound once with its verifier,
///        make of the proven score; like the score it judges the committed input. Which model
///        versions' verdicts count is the reader's decision.
///      - `verify` returns false (never reverts) for unknown assets, prompts that are not the
///        asset's generation parameters, unbound or changed verifiers and verifier failures; it
///        reverts only when `proof` is not an ABI-encoded `(uint256, bytes, uint256[])`.
contract ProvenanceRegistry is ERC721, IERC2981, IERC7007, IProvenanceRegistry {
    /// @notice Most parents one derivative may name (their shares pack into one storage slot).
    uint256 public constant MAX_PARENTS = 16;
    /// @notice Deepest lineage: an original has depth 0, its derivative 1, and so on.
    uint256 public constant MAX_DEPTH = 32;
    /// @notice Most leaves in a batch whose leaves travel in calldata.
    uint256 public constant MAX_BATCH_LEAVES = 4_096;
    /// @notice Most assets one `registerMany` call registers (each costs a full registration).
    uint256 public constant MAX_REGISTER_MANY = 64;
    /// @notice Most leaves under a root-only batch (proofs are at most 20 hashes long).
    uint256 public constant MAX_ROOT_BATCH_LEAVES = 1 << 20;
    /// @notice Longest metadata or manifest URI, in bytes.
    uint256 public constant MAX_URI_LENGTH = 256;
    /// @notice Highest protocol fee the constructor accepts (10%).
    uint16 public constant MAX_PROTOCOL_FEE_BPS = 1_000;
    /// @notice Highest secondary-sale royalty the constructor accepts (25%).
    uint16 public constant MAX_SECONDARY_ROYALTY_BPS = 2_500;
    /// @notice How long a batch commitment reserves its members: a member claimed within this
    ///         time of its commitment takes over a later registration of its digest; claimed
    ///         later, it only registers if nobody has.
    uint256 public constant PRIORITY_WINDOW = 1 days;
    /// @notice Most assets one `attestInference` call may cover (its dearest case, every asset
    ///         in its own storage word, stays under half a 30M-gas block).
    uint256 public constant MAX_ATTEST_BATCH = 256;
    /// @notice How many bits a proof's proven digest has (`provenDigestOf`: the top 253 bits of
    ///         keccak256(contentDigest)), so it is one field element. Finding another digest with
    ///         the same proven digest, content or not, is a 2^253 search.
    uint256 public constant PROVEN_DIGEST_BITS = 253;
    uint256 private constant _DIGEST_SHIFT = 256 - PROVEN_DIGEST_BITS;
    /// @dev Public instances per attested asset: commitment, score and proven digest.
    uint256 private constant _INSTANCES_PER_ASSET = 3;
    uint256 private constant _BPS = 10_000;
    /// @dev The BN254 scalar field modulus: public instances are elements of this field.
    uint256 private constant _FIELD_MODULUS =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// @dev Attestation records: 8 cells of 32 bits per storage word, indexed by asset `seq`.
    ///      A cell is the verdict (bits 30..31; `Verdict.None`, 0, while not attested) and the
    ///      score as 30-bit two's complement (bits 0..29).
    uint256 private constant _CELLS_PER_WORD_LOG2 = 3;
    uint256 private constant _CELL_BITS = 32;
    uint256 private constant _VERDICT_SHIFT = 30;
    uint256 private constant _VERDICT_MASK = 3 << _VERDICT_SHIFT;
    uint256 private constant _SCORE_MASK = (1 << _VERDICT_SHIFT) - 1;
    /// @dev Scores lie strictly between -2^29 and 2^29, what 30-bit two's complement holds
    ///      symmetrically; `ModelRegistry` keeps band edges in the same range.
    int256 private constant _SCORE_LIMIT = 1 << 29;

    /// @notice The model registry that model ids refer to.
    IModelRegistry public immutable MODEL_REGISTRY;
    /// @notice The licence manager that vouches for derivative licences.
    ILicenseGate public immutable LICENSE_MANAGER;
    /// @notice Protocol fee on asset revenue, in basis points; part of every royalty stack.
    uint16 public immutable PROTOCOL_FEE_BPS;
    /// @notice ERC-2981 royalty on secondary sales, paid to the creator, in basis points.
    uint16 public immutable SECONDARY_ROYALTY_BPS;

    /// @dev An asset's record in storage: `Asset` without the input commitment, which is kept by
    ///      registration number so that attesting reads one slot per asset.
    struct StoredAsset {
        address creator;
        uint32 modelId;
        uint8 depth;
        uint8 parentCount;
        uint48 seq;
        bytes32 paramsDigest;
    }

    /// @dev What an attestation takes of the attesting model version: the verifier that checks
    ///      the proof and the bands that judge the scores (see `IModelRegistry.bindVerifier`).
    struct Terms {
        address verifier;
        int256 acceptAt;
        int256 reviewAt;
    }

    mapping(bytes32 contentDigest => StoredAsset) private _assets;
    /// @dev keccak256(abi.encode(provenDigestOf(digest), inputCommitment)) of each record that has
    ///      a commitment: one cold read checks both what a proof names and what it hashed.
    mapping(uint256 seq => bytes32 inputBinding) private _inputBindings;
    mapping(bytes32 contentDigest => bytes32[]) private _parents;
    mapping(bytes32 contentDigest => uint256 packed) private _parentShares;
    mapping(bytes32 contentDigest => string) private _metadataURIs;
    /// @dev The first batch id an approval covers; 0 when not approved.
    mapping(address creator => mapping(address registrar => uint256 firstBatchId)) private _registrars;
    /// @dev The batch a record was claimed from (0: registered directly): its priority.
    mapping(bytes32 contentDigest => uint256 batchId) private _claimedFrom;
    mapping(uint256 batchId => Batch) private _batches;
    uint256 private _batchCount;
    uint256 private _assetCount;
    mapping(uint256 modelId => mapping(uint256 word => uint256 cells)) private _attestations;
    mapping(bytes32 statement => bool) private _statements;

    /// @param modelRegistry The model registry.
    /// @param licenseManager The licence manager (deployed right after this contract; its
    ///        constructor checks that it is the one named here).
    /// @param protocolFeeBps Protocol fee on asset revenue.
    /// @param secondaryRoyaltyBps ERC-2981 royalty on secondary sales.
    constructor(IModelRegistry modelRegistry, ILicenseGate licenseManager, uint16 protocolFeeBps, uint16 secondaryRoyaltyBps)
        ERC721("Proofmint Asset", "PMA")
    {
        if (
            address(modelRegistry) == address(0) || address(licenseManager) == address(0)
                || protocolFeeBps > MAX_PROTOCOL_FEE_BPS || secondaryRoyaltyBps > MAX_SECONDARY_ROYALTY_BPS
        ) revert ProvenanceRegistry__BadConfig();
        MODEL_REGISTRY = modelRegistry;
        LICENSE_MANAGER = licenseManager;
        PROTOCOL_FEE_BPS = protocolFeeBps;
        SECONDARY_ROYALTY_BPS = secondaryRoyaltyBps;
    }

    // ------------------------------------------------------------------ registration

    /// @inheritdoc IProvenanceRegistry
    function register(AssetInput calldata input, uint256[] calldata licenseIds) external {
        if (input.creator != msg.sender && _registrars[input.creator][msg.sender] == 0) {
            revert ProvenanceRegistry__NotAuthorized(input.creator, msg.sender);
        }
        if (_assets[input.contentDigest].creator != address(0)) {
            revert ProvenanceRegistry__AlreadyRegistered(input.contentDigest);
        }
        _register(input, licenseIds, 0, block.timestamp, type(uint256).max);
    }

    /// @inheritdoc IProvenanceRegistry
    function registerMany(AssetInput[] calldata inputs, uint256[][] calldata licenseIds) external {
        uint256 count = inputs.length;
        if (count == 0 || count > MAX_REGISTER_MANY) revert ProvenanceRegistry__BadBatchSize(count, MAX_REGISTER_MANY);
        if (licenseIds.length != count) revert ProvenanceRegistry__LicenseCountMismatch(count, licenseIds.length);
        for (uint256 i = 0; i < count; ++i) {
            AssetInput calldata input = inputs[i];
            if (input.creator != msg.sender && _registrars[input.creator][msg.sender] == 0) {
                revert ProvenanceRegistry__NotAuthorized(input.creator, msg.sender);
            }
            if (_assets[input.contentDigest].creator != address(0)) {
                revert ProvenanceRegistry__AlreadyRegistered(input.contentDigest);
            }
            _register(input, licenseIds[i], 0, block.timestamp, type(uint256).max);
        }
    }

    /// @inheritdoc IProvenanceRegistry
    function registerBatchLeaves(bytes32[] calldata leaves) external returns (uint256 batchId) {
        uint256 count = leaves.length;
        if (count == 0 || count > MAX_BATCH_LEAVES) revert ProvenanceRegistry__BadBatchSize(count, MAX_BATCH_LEAVES);
        bytes32 root = _rootOf(leaves);
        batchId = _commitBatch(root, count);
        emit BatchCommitted(batchId, msg.sender, root, count, true, "");
    }

    /// @inheritdoc IProvenanceRegistry
    function registerBatchRoot(bytes32 root, uint256 leafCount, string calldata manifestURI)
        external
        returns (uint256 batchId)
    {
        if (leafCount == 0 || leafCount > MAX_ROOT_BATCH_LEAVES) {
            revert ProvenanceRegistry__BadBatchSize(leafCount, MAX_ROOT_BATCH_LEAVES);
        }
        uint256 uriLength = bytes(manifestURI).length;
        if (root == bytes32(0) || uriLength == 0) revert ProvenanceRegistry__BadBatchCommitment();
        if (uriLength > MAX_URI_LENGTH) revert ProvenanceRegistry__BadMetadataURI(uriLength, MAX_URI_LENGTH);
        batchId = _commitBatch(root, leafCount);
        emit BatchCommitted(batchId, msg.sender, root, leafCount, false, manifestURI);
    }

    /// @inheritdoc IProvenanceRegistry
    function claimFromBatch(
        uint256 batchId,
        uint256 index,
        AssetInput calldata input,
        bytes32[] calldata proof,
        uint256[] calldata licenseIds
    ) external {
        Batch storage batch = _requireBatch(batchId);
        uint256 leafCount = batch.leafCount;
        if (index >= leafCount) revert ProvenanceRegistry__LeafIndexOutOfRange(index, leafCount);
        if (_processProof(_leafOf(input, licenseIds), index, leafCount, proof) != batch.root) {
            revert ProvenanceRegistry__InvalidProof(batchId, index);
        }
        _claim(input, licenseIds, batchId, batch);
    }

    /// @inheritdoc IProvenanceRegistry
    function setRegistrar(address registrar, bool approved) external {
        uint256 since = _registrars[msg.sender][registrar];
        if (!approved) since = 0;
        else if (since == 0) since = _batchCount + 1;
        _registrars[msg.sender][registrar] = since;
        emit RegistrarSet(msg.sender, registrar, approved, since);
    }

    // ------------------------------------------------------------------ ERC-7007

    /// @inheritdoc IERC7007
    /// @dev `prompt` is the asset's generation-parameters document (its sha256 is the registered
    ///      `paramsDigest`; the prompt text is in it); `aigcData` is the 32-byte content digest
    ///      (the content itself is off chain under that digest); `proof` is
    ///      `abi.encode(uint256 modelId, bytes zkProof, uint256[] instances)`, a proof of model
    ///      version `modelId` (see `verify`). Only the token owner or the creator may add data;
    ///      the data is not stored, only emitted.
    function addAigcData(uint256 tokenId, bytes calldata prompt, bytes calldata aigcData, bytes calldata proof)
        external
    {
        bytes32 id = bytes32(tokenId);
        address owner = _requireOwned(tokenId);
        if (msg.sender != owner && msg.sender != _assets[id].creator) {
            revert ProvenanceRegistry__NotOwnerOrCreator(id, msg.sender);
        }
        if (aigcData.length != 32 || bytes32(aigcData) != id || !verify(prompt, aigcData, proof)) {
            revert ProvenanceRegistry__AigcProofRejected(id);
        }
        emit AigcData(tokenId, prompt, aigcData, proof);
    }

    /// @inheritdoc IERC7007
    /// @dev A proof of a retired model version still verifies (retirement stops new
    ///      attestations, not the truth of old proofs).
    ///      True when `aigcData` is the content digest of a registered asset, sha256(`prompt`)
    ///      is its `paramsDigest` (the generation parameters, prompt included), `proof` decodes
    ///      to `(modelId, zkProof, instances)` in `attestInference`'s layout for some n assets,
    ///      one of which is this asset (a commitment and proven digest at one position that hash
    ///      to its input binding), model version `modelId` has a verifier bound
    ///      whose code is the pinned code, and that verifier accepts the proof. Which model
    ///      versions a reader trusts to judge assets is the reader's decision: the model id is
    ///      part of the proof, and `ModelRegistry` says who developed it.
    function verify(bytes calldata prompt, bytes calldata aigcData, bytes calldata proof)
        public
        view
        returns (bool success)
    {
        if (aigcData.length != 32) return false;
        StoredAsset storage asset = _assets[bytes32(aigcData)];
        if (asset.creator == address(0) || sha256(prompt) != asset.paramsDigest) return false;
        bytes32 binding = _inputBindings[asset.seq];
        if (binding == bytes32(0)) return false;
        (uint256 modelId, bytes memory zkProof, uint256[] memory instances) =
            abi.decode(proof, (uint256, bytes, uint256[]));
        if (!_holdsAsset(instances, binding)) return false;
        if (modelId == 0 || modelId > MODEL_REGISTRY.modelCount()) return false;
        (address verifier,, bytes32 codeHash) = MODEL_REGISTRY.verifierOf(modelId);
        if (verifier == address(0) || verifier.codehash != codeHash) return false;
        try IInferenceVerifier(verifier).verifyProof(zkProof, instances) returns (bool ok) {
            return ok;
        } catch {
            return false;
        }
    }

    // ------------------------------------------------------------------ inference attestations

    /// @inheritdoc IProvenanceRegistry
    /// @dev Gas: one call to the model registry (verifier, pinned code hash, retirement and
    ///      bands together); per asset one cold read (its input binding) and one 32-bit cell;
    ///      cells of assets registered one after another share a storage word, so a batch
    ///      registered together and attested together writes one new word per 8 assets. The
    ///      event's data is written as the assets are checked, not encoded again at the end. The
    ///      verifier is called last, through STATICCALL (it cannot re-enter); if it rejects,
    ///      every write above reverts.
    function attestInference(
        uint256 modelId,
        uint256[] calldata seqs,
        bytes calldata proof,
        uint256[] calldata instances
    ) external {
        uint256 count = seqs.length;
        if (count == 0 || count > MAX_ATTEST_BATCH) {
            revert ProvenanceRegistry__BadAttestationSize(count, MAX_ATTEST_BATCH);
        }
        if (instances.length != _INSTANCES_PER_ASSET * count) {
            revert ProvenanceRegistry__BadInstanceCount(instances.length, _INSTANCES_PER_ASSET * count);
        }
        Terms memory terms = _attestationTerms(modelId);
        // The records' numbers are part of the statement: a record taken over (same content and
        // commitment, new number) can be attested again with the same instances.
        bytes32 statement = _statementOf(modelId, seqs, instances);
        if (_statements[statement]) revert ProvenanceRegistry__StatementAlreadyAttested(statement);

        // Effects (all undone below if the verifier rejects).
        _statements[statement] = true;
        bytes memory attested = _recordAttestations(seqs, instances, modelId, terms.acceptAt, terms.reviewAt);

        // Interaction: a read-only call to the verifier bound to the model version.
        bool accepted;
        try IInferenceVerifier(terms.verifier).verifyProof(proof, instances) returns (bool ok) {
            accepted = ok;
        } catch {
            accepted = false;
        }
        if (!accepted) revert ProvenanceRegistry__ProofRejected(modelId);
        // emit InferenceAttested(modelId, statement, seqs, scores, verdicts): the data was laid
        // out by _recordAttestations (see _inferenceAttestedData); the topics are the event's
        // signature hash and its two indexed arguments.
        bytes32 topic = InferenceAttested.selector;
        assembly ("memory-safe") {
            log3(add(attested, 0x20), mload(attested), topic, modelId, statement)
        }
    }

    /// @dev keccak256(abi.encode(modelId, seqs, instances)), the encoding dropped once hashed: the
    ///      free memory pointer goes back to where it was, so the memory the encoding took (four
    ///      words per asset) is reused by what follows instead of paid for again (about 40 gas
    ///      per asset in a batch of 193).
    function _statementOf(uint256 modelId, uint256[] calldata seqs, uint256[] calldata instances)
        private
        pure
        returns (bytes32 statement)
    {
        uint256 free;
        assembly ("memory-safe") {
            free := mload(0x40)
        }
        statement = keccak256(abi.encode(modelId, seqs, instances));
        assembly ("memory-safe") {
            mstore(0x40, free)
        }
    }

    /// @dev The terms of a model version that may attest (one call to the model registry): it
    ///      has a verifier bound, the verifier's code is still the pinned code, and it is not
    ///      retired.
    function _attestationTerms(uint256 modelId) private view returns (Terms memory) {
        (address verifier, bytes32 codeHash, uint64 retiredAt, int32 acceptAt, int32 reviewAt) =
            MODEL_REGISTRY.attestationTermsOf(modelId);
        if (verifier == address(0)) revert ProvenanceRegistry__NoVerifier(modelId);
        if (verifier.codehash != codeHash) revert ProvenanceRegistry__VerifierCodeChanged(modelId, verifier);
        if (retiredAt != 0) revert ProvenanceRegistry__ModelNotActive(modelId);
        return Terms(verifier, acceptAt, reviewAt);
    }

    /// @inheritdoc IProvenanceRegistry
    function attestationOf(bytes32 contentDigest, uint256 modelId)
        external
        view
        returns (bool attested, int256 score, Verdict verdict)
    {
        uint256 seq = _requireAsset(contentDigest).seq;
        uint256 cell = _attestations[modelId][seq >> _CELLS_PER_WORD_LOG2] >> _cellShift(seq);
        // Two bits: always a member of Verdict.
        verdict = Verdict((cell & _VERDICT_MASK) >> _VERDICT_SHIFT);
        if (verdict == Verdict.None) return (false, 0, Verdict.None);
        return (true, _cellScore(cell), verdict);
    }

    /// @inheritdoc IProvenanceRegistry
    function isStatementAttested(bytes32 statement) external view returns (bool) {
        return _statements[statement];
    }

    /// @inheritdoc IProvenanceRegistry
    function provenDigestOf(bytes32 contentDigest) external pure returns (uint256) {
        return _provenDigest(contentDigest);
    }

    /// @inheritdoc IProvenanceRegistry
    function assetCount() external view returns (uint256) {
        return _assetCount;
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IProvenanceRegistry
    function isRegistrar(address creator, address registrar) external view returns (bool) {
        return _registrars[creator][registrar] != 0;
    }

    /// @inheritdoc IProvenanceRegistry
    function registrarSince(address creator, address registrar) external view returns (uint256) {
        return _registrars[creator][registrar];
    }

    /// @inheritdoc IProvenanceRegistry
    function claimedFrom(bytes32 contentDigest) external view returns (uint256) {
        return _claimedFrom[contentDigest];
    }

    /// @inheritdoc IProvenanceRegistry
    function getAsset(bytes32 contentDigest) external view returns (Asset memory) {
        StoredAsset storage asset = _requireAsset(contentDigest);
        return Asset({
            creator: asset.creator,
            modelId: asset.modelId,
            depth: asset.depth,
            parentCount: asset.parentCount,
            seq: asset.seq,
            paramsDigest: asset.paramsDigest,
            inputBinding: _inputBindings[asset.seq]
        });
    }

    /// @inheritdoc IProvenanceRegistry
    function exists(bytes32 contentDigest) external view returns (bool) {
        return _assets[contentDigest].creator != address(0);
    }

    /// @inheritdoc IProvenanceRegistry
    function creatorOf(bytes32 contentDigest) external view returns (address) {
        return _assets[contentDigest].creator;
    }

    /// @inheritdoc IProvenanceRegistry
    function parentsOf(bytes32 contentDigest) external view returns (bytes32[] memory parents, uint16[] memory shareBps) {
        _requireAsset(contentDigest);
        parents = _parents[contentDigest];
        shareBps = new uint16[](parents.length);
        uint256 packed = _parentShares[contentDigest];
        for (uint256 i = 0; i < parents.length; ++i) {
            shareBps[i] = uint16(packed >> (16 * i));
        }
    }

    /// @inheritdoc IProvenanceRegistry
    function getBatch(uint256 batchId) external view returns (Batch memory) {
        return _requireBatch(batchId);
    }

    /// @inheritdoc IProvenanceRegistry
    function batchCount() external view returns (uint256) {
        return _batchCount;
    }

    /// @inheritdoc IProvenanceRegistry
    function leafOf(AssetInput calldata input, uint256[] calldata licenseIds) external pure returns (bytes32) {
        return _leafOf(input, licenseIds);
    }

    /// @inheritdoc IProvenanceRegistry
    function processBatchProof(bytes32 leaf, uint256 index, uint256 leafCount, bytes32[] calldata proof)
        external
        pure
        returns (bytes32)
    {
        if (index >= leafCount) revert ProvenanceRegistry__LeafIndexOutOfRange(index, leafCount);
        return _processProof(leaf, index, leafCount, proof);
    }

    /// @inheritdoc IProvenanceRegistry
    function rootOf(bytes32[] calldata leaves) external pure returns (bytes32) {
        if (leaves.length == 0) revert ProvenanceRegistry__BadBatchSize(0, MAX_BATCH_LEAVES);
        return _rootOf(leaves);
    }

    /// @notice Returns the token's metadata URI.
    /// @param tokenId The token (content digest as uint256).
    /// @return The URI given at registration.
    function tokenURI(uint256 tokenId) public view override returns (string memory) {
        _requireOwned(tokenId);
        return _metadataURIs[bytes32(tokenId)];
    }

    /// @inheritdoc IERC2981
    /// @dev The receiver is the recorded creator; (0, 0) for an unknown token.
    function royaltyInfo(uint256 tokenId, uint256 salePrice) external view returns (address receiver, uint256 amount) {
        receiver = _assets[bytes32(tokenId)].creator;
        if (receiver == address(0)) return (address(0), 0);
        amount = salePrice * SECONDARY_ROYALTY_BPS / _BPS;
    }

    /// @notice ERC-165: ERC-721, ERC-721 metadata, ERC-2981 and ERC-7007.
    /// @param interfaceId The interface id.
    /// @return True when supported.
    function supportsInterface(bytes4 interfaceId) public view override(ERC721, IERC165) returns (bool) {
        return interfaceId == type(IERC2981).interfaceId || interfaceId == type(IERC7007).interfaceId
            || super.supportsInterface(interfaceId);
    }

    // ------------------------------------------------------------------ internals

    /// @dev Registers `input`; the caller checked authority and that the digest is free (or that
    ///      a claim may take its record over: then `parentSeqLimit` is the batch's
    ///      `assetsBefore`, else the maximum).
    function _register(
        AssetInput calldata input,
        uint256[] calldata licenseIds,
        uint256 batchId,
        uint256 committedAt,
        uint256 parentSeqLimit
    ) private {
        if (input.contentDigest == bytes32(0)) revert ProvenanceRegistry__ZeroContentDigest();
        (uint256 modelBps, uint32 modelId) = _checkModel(input.modelId, committedAt);
        uint256 uriLength = bytes(input.metadataURI).length;
        if (uriLength == 0 || uriLength > MAX_URI_LENGTH) {
            revert ProvenanceRegistry__BadMetadataURI(uriLength, MAX_URI_LENGTH);
        }
        uint8 depth = _checkParents(input.contentDigest, input.parents, licenseIds.length, parentSeqLimit);

        // Effects.
        (uint256 seq, bool superseding) = _store(input, modelId, depth);
        if (input.parents.length != 0) {
            _consumeLicenses(input.contentDigest, input.creator, input.parents, licenseIds, modelBps);
        }
        if (superseding) {
            // The token moves to the rightful creator whoever holds it (no approval asked).
            _update(input.creator, uint256(input.contentDigest), address(0));
        } else {
            _mint(input.creator, uint256(input.contentDigest));
        }
        _emitRegistered(input, batchId, seq);
    }

    /// @dev Writes the record under a new registration number, replacing a record taken over.
    function _store(AssetInput calldata input, uint32 modelId, uint8 depth)
        private
        returns (uint256 seq, bool superseding)
    {
        bytes32 id = input.contentDigest;
        superseding = _assets[id].creator != address(0);
        if (superseding) _clearRecord(id);
        seq = _assetCount;
        _assetCount = seq + 1;
        _assets[id] = StoredAsset({
            creator: input.creator,
            modelId: modelId,
            depth: depth,
            parentCount: uint8(input.parents.length),
            seq: SafeCast.toUint48(seq),
            paramsDigest: input.paramsDigest
        });
        if (input.inputCommitment != bytes32(0)) {
            _inputBindings[seq] = _binding(_provenDigest(id), uint256(input.inputCommitment));
        }
        _metadataURIs[id] = input.metadataURI;
        if (input.parents.length != 0) _parents[id] = input.parents;
    }

    /// @dev A proven batch member: checks the submitter's authority as of the commitment and the
    ///      member's priority over a record of the same digest, then registers it.
    function _claim(AssetInput calldata input, uint256[] calldata licenseIds, uint256 batchId, Batch storage batch)
        private
    {
        address submitter = batch.submitter;
        if (input.creator != submitter) {
            // Authority as of the commitment: an approval given after it does not count.
            uint256 since = _registrars[input.creator][submitter];
            if (since == 0 || since > batchId) revert ProvenanceRegistry__NotAuthorized(input.creator, submitter);
        }
        bytes32 id = input.contentDigest;
        StoredAsset storage existing = _assets[id];
        address previousCreator = existing.creator;
        uint256 previousSeq = existing.seq;
        uint256 parentSeqLimit = type(uint256).max;
        if (previousCreator != address(0)) {
            if (!_mayTakeOver(id, previousCreator, previousSeq, input.creator, batchId, batch)) {
                revert ProvenanceRegistry__AlreadyRegistered(id);
            }
            parentSeqLimit = batch.assetsBefore;
        }
        _claimedFrom[id] = batchId;
        _register(input, licenseIds, batchId, batch.committedAt, parentSeqLimit);
        if (previousCreator != address(0)) {
            // Terms attached under the record taken over sell and license nothing more.
            LICENSE_MANAGER.onAssetSuperseded(id);
            emit AssetSuperseded(id, previousCreator, input.creator, batchId, previousSeq);
        }
    }

    /// @dev Forgets what a record taken over leaves behind: its commitment (so its old `seq`
    ///      can no longer be attested) and its lineage.
    function _clearRecord(bytes32 id) private {
        delete _inputBindings[_assets[id].seq];
        delete _parents[id];
        delete _parentShares[id];
    }

    /// @dev Whether a member of batch `batchId` may take over the record of `id` (created by
    ///      `previousCreator` under `previousSeq`): another creator's, within `PRIORITY_WINDOW`
    ///      of the commitment, if the batch was committed before that record came (claimed from
    ///      a later batch, or registered directly after the commitment). A creator's own record
    ///      stands: replacing it would void the licences sold under it and change its lineage,
    ///      and anyone may send the claim.
    function _mayTakeOver(
        bytes32 id,
        address previousCreator,
        uint256 previousSeq,
        address creator,
        uint256 batchId,
        Batch storage batch
    ) private view returns (bool) {
        if (previousCreator == creator || block.timestamp > uint256(batch.committedAt) + PRIORITY_WINDOW) {
            return false;
        }
        uint256 existingBatch = _claimedFrom[id];
        if (existingBatch != 0) return batchId < existingBatch;
        return previousSeq >= batch.assetsBefore;
    }

    function _emitRegistered(AssetInput calldata input, uint256 batchId, uint256 seq) private {
        emit AssetRegistered(
            input.contentDigest,
            input.creator,
            input.modelId,
            input.paramsDigest,
            input.inputCommitment,
            input.parents,
            batchId,
            seq,
            input.metadataURI
        );
    }

    /// @dev Interactions with the licence manager (trusted, immutable): one licence unit burnt per
    ///      parent. The royalty stack is checked once every share is known.
    function _consumeLicenses(
        bytes32 id,
        address creator,
        bytes32[] calldata parents,
        uint256[] calldata licenseIds,
        uint256 modelBps
    ) private {
        uint256 stack = modelBps + PROTOCOL_FEE_BPS;
        uint256 packed;
        for (uint256 i = 0; i < parents.length; ++i) {
            uint16 share = LICENSE_MANAGER.consumeDerivativeLicense(creator, parents[i], licenseIds[i]);
            stack += share;
            packed |= uint256(share) << (16 * i);
        }
        if (stack > _BPS) revert ProvenanceRegistry__RoyaltyStackTooHigh(stack);
        if (packed != 0) _parentShares[id] = packed;
    }

    function _checkModel(uint256 modelId, uint256 committedAt) private view returns (uint256 modelBps, uint32 id) {
        if (modelId == 0 || modelId > MODEL_REGISTRY.modelCount()) revert ProvenanceRegistry__ModelNotActive(modelId);
        uint64 retiredAt = MODEL_REGISTRY.retiredAt(modelId);
        // Retired at or before the commitment: a batch committed while the model was live may
        // still be claimed afterwards, a new registration may not.
        if (retiredAt != 0 && retiredAt <= committedAt) revert ProvenanceRegistry__ModelNotActive(modelId);
        (, uint16 developerBps, uint16 dataBps,) = MODEL_REGISTRY.royaltyOf(modelId);
        return (uint256(developerBps) + dataBps, SafeCast.toUint32(modelId));
    }

    function _checkParents(bytes32 id, bytes32[] calldata parents, uint256 licenseCount, uint256 parentSeqLimit)
        private
        view
        returns (uint8 depth)
    {
        uint256 count = parents.length;
        if (count > MAX_PARENTS) revert ProvenanceRegistry__TooManyParents(count, MAX_PARENTS);
        if (licenseCount != count) revert ProvenanceRegistry__LicenseCountMismatch(count, licenseCount);
        uint256 deepest;
        for (uint256 i = 0; i < count; ++i) {
            bytes32 parent = parents[i];
            if (parent == id) revert ProvenanceRegistry__SelfParent(id);
            if (i != 0) {
                if (parent == parents[i - 1]) revert ProvenanceRegistry__DuplicateParent(parent);
                if (parent < parents[i - 1]) revert ProvenanceRegistry__ParentsNotSorted(i);
            }
            StoredAsset storage p = _assets[parent];
            if (p.creator == address(0)) revert ProvenanceRegistry__UnknownParent(parent);
            if (p.seq >= parentSeqLimit) revert ProvenanceRegistry__ParentAfterCommit(parent, p.seq, parentSeqLimit);
            if (uint256(p.depth) + 1 > deepest) deepest = uint256(p.depth) + 1;
        }
        if (deepest > MAX_DEPTH) revert ProvenanceRegistry__TooDeep(deepest, MAX_DEPTH);
        return uint8(deepest);
    }

    function _commitBatch(bytes32 root, uint256 leafCount) private returns (uint256 batchId) {
        batchId = ++_batchCount;
        _batches[batchId] = Batch({
            root: root,
            submitter: msg.sender,
            // Bounded by MAX_ROOT_BATCH_LEAVES (2^20) < 2^24.
            leafCount: uint24(leafCount),
            committedAt: SafeCast.toUint32(block.timestamp),
            assetsBefore: SafeCast.toUint40(_assetCount)
        });
    }

    function _requireAsset(bytes32 contentDigest) private view returns (StoredAsset storage asset) {
        asset = _assets[contentDigest];
        if (asset.creator == address(0)) revert ProvenanceRegistry__UnknownAsset(contentDigest);
    }

    /// @dev Checks each asset against its instances, decodes its score, judges it by the bands
    ///      and sets its cell; returns `InferenceAttested`'s data. The current storage word is
    ///      kept in memory and written back when the next asset lives in another word (or at the
    ///      end), so a run of neighbours costs one write. (`modelId` and the bands come after the
    ///      arrays to keep them within reach of the stack.)
    function _recordAttestations(
        uint256[] calldata seqs,
        uint256[] calldata instances,
        uint256 modelId,
        int256 acceptAt,
        int256 reviewAt
    ) private returns (bytes memory eventData) {
        uint256 count = seqs.length;
        eventData = _inferenceAttestedData(seqs);
        mapping(uint256 word => uint256 cells) storage words = _attestations[modelId];
        uint256 word = type(uint256).max;
        uint256 cells;
        // The caller checked instances.length == 3 * count and the ABI decoder that both arrays lie
        // within calldata, so every read below is in bounds and no index overflows.
        unchecked {
            for (uint256 i = 0; i < count; ++i) {
                (uint256 seq, int256 score) = _checkAsset(seqs, instances, i, count);
                if (seq >> _CELLS_PER_WORD_LOG2 != word) {
                    if (word != type(uint256).max) words[word] = cells;
                    word = seq >> _CELLS_PER_WORD_LOG2;
                    cells = words[word];
                }
                uint256 shift = (seq & ((1 << _CELLS_PER_WORD_LOG2) - 1)) * _CELL_BITS;
                if ((cells >> shift) & _VERDICT_MASK != 0) revert ProvenanceRegistry__AlreadyAttested(seq, modelId);
                Verdict verdict =
                    score >= acceptAt ? Verdict.Accept : (score >= reviewAt ? Verdict.Review : Verdict.Reject);
                // |score| < 2^29 (checked in _checkAsset): masking to 30 bits keeps its two's
                // complement. The verdict is never None, so the cell reads as attested.
                cells |= ((uint256(verdict) << _VERDICT_SHIFT) | (uint256(score) & _SCORE_MASK)) << shift;
                // scores[i] and verdicts[i] of the event data: words 6 + count + i and
                // 7 + 2 count + i (see _inferenceAttestedData).
                assembly ("memory-safe") {
                    let at := add(eventData, shl(5, add(add(count, i), 6)))
                    mstore(at, score)
                    mstore(add(at, shl(5, add(count, 1))), verdict)
                }
            }
        }
        words[word] = cells;
    }

    /// @dev `InferenceAttested`'s data, abi.encode(seqs, scores, verdicts), with the seqs in
    ///      place and the scores and verdicts left for `_recordAttestations` to write as it goes
    ///      (an `emit` would encode two memory arrays once more: about 200 gas per asset).
    ///      In 32-byte words from `data` (word 0 is the length of the bytes, n = seqs.length):
    ///      - 1, 2, 3: the offsets of the three arrays;
    ///      - 4: n, then seqs at 5 .. 4 + n;
    ///      - 5 + n: n, then scores at 6 + n .. 5 + 2n;
    ///      - 6 + 2n: n, then verdicts at 7 + 2n .. 6 + 3n.
    function _inferenceAttestedData(uint256[] calldata seqs) private pure returns (bytes memory data) {
        uint256 count = seqs.length;
        uint256 arrayBytes = (count + 1) * 32;
        assembly ("memory-safe") {
            // Allocated without zeroing: every word is written here or by _recordAttestations.
            data := mload(0x40)
            mstore(data, add(0x60, mul(3, arrayBytes)))
            mstore(0x40, add(add(data, 0x80), mul(3, arrayBytes)))
            let head := add(data, 0x20)
            mstore(head, 0x60)
            mstore(add(head, 0x20), add(0x60, arrayBytes))
            mstore(add(head, 0x40), add(0x60, shl(1, arrayBytes)))
            mstore(add(head, 0x60), count)
            calldatacopy(add(head, 0x80), seqs.offset, shl(5, count))
            mstore(add(add(head, 0x60), arrayBytes), count)
            mstore(add(add(head, 0x60), shl(1, arrayBytes)), count)
        }
    }

    /// @dev Asset `index` of an attestation: its registration number and decoded score, once its
    ///      instances are field elements, its proven digest and commitment are the record's, and
    ///      its score fits an attestation cell.
    ///      `index < count` and `instances.length == 3 * count`, as `_recordAttestations` ensures.
    function _checkAsset(uint256[] calldata seqs, uint256[] calldata instances, uint256 index, uint256 count)
        private
        view
        returns (uint256 seq, int256 score)
    {
        uint256 commitment;
        uint256 value;
        uint256 digest;
        assembly ("memory-safe") {
            seq := calldataload(add(seqs.offset, shl(5, index)))
            let at := add(instances.offset, shl(5, index))
            commitment := calldataload(at)
            value := calldataload(add(at, shl(5, count)))
            digest := calldataload(add(at, shl(6, count)))
        }
        if (commitment >= _FIELD_MODULUS || value >= _FIELD_MODULUS || digest >= _FIELD_MODULUS) {
            _revertNotInField(index, count, [commitment, value, digest]);
        }
        bytes32 binding = _inputBindings[seq];
        if (binding == bytes32(0) || binding != _binding(digest, commitment)) {
            // Only the failure path tells an unregistered number from a mismatch.
            if (seq >= _assetCount) revert ProvenanceRegistry__UnknownSeq(seq);
            revert ProvenanceRegistry__InputBindingMismatch(seq, index);
        }
        // The score instance as a signed score: values above (modulus - 1) / 2 encode
        // -(modulus - value). Only |score| < 2^29 fits an attestation cell. (Decoded here rather
        // than in a function of its own: a call per asset costs about 40 gas.)
        if (value > (_FIELD_MODULUS - 1) / 2) {
            uint256 magnitude = _FIELD_MODULUS - value;
            if (magnitude >= uint256(_SCORE_LIMIT)) revert ProvenanceRegistry__ScoreOutOfRange(seq, value);
            return (seq, -int256(magnitude));
        }
        if (value >= uint256(_SCORE_LIMIT)) revert ProvenanceRegistry__ScoreOutOfRange(seq, value);
        score = int256(value);
    }

    /// @dev Reverts with the first of asset `index`'s instances that is not a field element
    ///      (the cold path of `_recordAttestations`).
    function _revertNotInField(uint256 index, uint256 count, uint256[3] memory values) private pure {
        for (uint256 k = 0; k < 3; ++k) {
            if (values[k] >= _FIELD_MODULUS) revert ProvenanceRegistry__InstanceNotInField(k * count + index, values[k]);
        }
    }

    /// @dev The proven digest of a content digest: the top 253 bits of its keccak256. Hashing
    ///      first means no bit of the digest is dropped: a digest next to another (differing in
    ///      its low bits) has an unrelated proven digest.
    function _provenDigest(bytes32 contentDigest) private pure returns (uint256) {
        bytes32 hashed;
        assembly ("memory-safe") {
            mstore(0x00, contentDigest)
            hashed := keccak256(0x00, 0x20)
        }
        return uint256(hashed) >> _DIGEST_SHIFT;
    }

    /// @dev What a record's input binding is: its proven digest (`_provenDigest`) and its input
    ///      commitment, hashed together.
    function _binding(uint256 provenDigest, uint256 commitment) private pure returns (bytes32 binding) {
        // keccak256(abi.encode(provenDigest, commitment)), hashed in scratch space.
        assembly ("memory-safe") {
            mstore(0x00, provenDigest)
            mstore(0x20, commitment)
            binding := keccak256(0x00, 0x40)
        }
    }

    /// @dev Whether `instances`, in `attestInference`'s layout and all field elements, hold an
    ///      asset (a commitment and proven digest at the same position) whose binding is `binding`.
    function _holdsAsset(uint256[] memory instances, bytes32 binding) private pure returns (bool) {
        uint256 length = instances.length;
        uint256 count = length / _INSTANCES_PER_ASSET;
        if (count == 0 || length != count * _INSTANCES_PER_ASSET) return false;
        for (uint256 i = 0; i < length; ++i) {
            if (instances[i] >= _FIELD_MODULUS) return false;
        }
        for (uint256 i = 0; i < count; ++i) {
            if (_binding(instances[2 * count + i], instances[i]) == binding) return true;
        }
        return false;
    }

    function _cellShift(uint256 seq) private pure returns (uint256) {
        return (seq & ((1 << _CELLS_PER_WORD_LOG2) - 1)) * _CELL_BITS;
    }

    /// @dev Sign-extends the cell's 30-bit score.
    function _cellScore(uint256 cell) private pure returns (int256) {
        int256 raw = int256(cell & _SCORE_MASK);
        return raw >= _SCORE_LIMIT ? raw - (_SCORE_LIMIT << 1) : raw;
    }

    function _requireBatch(uint256 batchId) private view returns (Batch storage) {
        if (batchId == 0 || batchId > _batchCount) revert ProvenanceRegistry__UnknownBatch(batchId);
        return _batches[batchId];
    }

    function _leafOf(AssetInput calldata input, uint256[] calldata licenseIds) private pure returns (bytes32) {
        return keccak256(bytes.concat(bytes1(0x00), abi.encode(input, licenseIds)));
    }

    function _node(bytes32 left, bytes32 right) private pure returns (bytes32) {
        return keccak256(abi.encodePacked(bytes1(0x01), left, right));
    }

    /// @dev Walks from the leaf to the root. At each level the node at `index` either is the odd
    ///      last node (carried up, no sibling used) or takes the next proof element as its sibling
    ///      on the side its index parity says. The proof length must match exactly.
    function _processProof(bytes32 leaf, uint256 index, uint256 count, bytes32[] calldata proof)
        private
        pure
        returns (bytes32 node)
    {
        uint256 expected;
        uint256 i = index;
        for (uint256 n = count; n > 1; n = (n + 1) / 2) {
            if (i != n - 1 || n % 2 == 0) ++expected;
            i /= 2;
        }
        if (proof.length != expected) revert ProvenanceRegistry__BadProofLength(proof.length, expected);
        node = leaf;
        uint256 position;
        for (uint256 n = count; n > 1; n = (n + 1) / 2) {
            if (index != n - 1 || n % 2 == 0) {
                node = index % 2 == 1 ? _node(proof[position], node) : _node(node, proof[position]);
                ++position;
            }
            index /= 2;
        }
    }

    function _rootOf(bytes32[] calldata leaves) private pure returns (bytes32) {
        uint256 count = leaves.length;
        if (count == 1) return leaves[0];
        uint256 width = (count + 1) / 2;
        bytes32[] memory level = new bytes32[](width);
        for (uint256 i = 0; i + 1 < count; i += 2) {
            level[i / 2] = _node(leaves[i], leaves[i + 1]);
        }
        if (count % 2 == 1) level[width - 1] = leaves[count - 1];
        count = width;
        while (count > 1) {
            width = (count + 1) / 2;
            for (uint256 i = 0; i + 1 < count; i += 2) {
                level[i / 2] = _node(level[i], level[i + 1]);
            }
            if (count % 2 == 1) level[width - 1] = level[count - 1];
            count = width;
        }
        return level[0];
    }
}
